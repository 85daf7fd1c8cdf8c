package devstack

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// maxLines bounds the lines a lineLog keeps in memory (the file keeps all).
const maxLines = 50000

// lineLog is an io.Writer that splits a stream into lines, appends each
// complete line to a file and keeps the most recent ones in memory.
type lineLog struct {
	mu      *sync.Mutex // shared by the streams writing to one file
	file    io.Writer
	partial []byte
	lines   []string
	first   int           // number of lines dropped from the front of lines
	changed chan struct{} // closed and replaced whenever a line is added
	onLine  func(string)
}

func newLineLog(file io.Writer, onLine func(string)) *lineLog {
	return &lineLog{mu: new(sync.Mutex), file: file, onLine: onLine, changed: make(chan struct{})}
}

func (l *lineLog) Write(p []byte) (int, error) {
	var complete []string
	l.mu.Lock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		complete = append(complete, l.add(l.partial[:i+1]))
		l.partial = l.partial[i+1:]
	}
	l.mu.Unlock()
	if l.onLine != nil {
		for _, line := range complete {
			l.onLine(line)
		}
	}
	return len(p), nil
}

// add records one line (with its newline) and returns it without the newline.
// The caller holds mu.
func (l *lineLog) add(b []byte) string {
	_, _ = l.file.Write(b)
	line := string(bytes.TrimRight(b, "\r\n"))
	if len(l.lines) == maxLines {
		l.first += maxLines / 2
		l.lines = append(l.lines[:0], l.lines[maxLines/2:]...)
	}
	l.lines = append(l.lines, line)
	close(l.changed)
	l.changed = make(chan struct{})
	return line
}

// flush records a last line that had no newline.
func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.add(append(l.partial, '\n'))
		l.partial = nil
	}
}

// mark is the position of the next line, for since.
func (l *lineLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first + len(l.lines)
}

// since returns the lines recorded from mark on (those still in memory).
func (l *lineLog) since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[min(max(mark-l.first, 0), len(l.lines)):]...)
}

func (l *lineLog) tail(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[max(0, len(l.lines)-n):]...)
}

// waitFor waits until a line from mark on satisfies match, or timeout passes.
func (l *lineLog) waitFor(mark int, match func(string) bool, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.lines[min(max(mark-l.first, 0), len(l.lines)):] {
			if match(line) {
				l.mu.Unlock()
				return true
			}
		}
		mark = l.first + len(l.lines)
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-t.C:
			return false
		}
	}
}

// LogRecord is one JSON line the function wrote.
type LogRecord map[string]any

// String returns the field key when it holds a string, else "".
func (r LogRecord) String(key string) string {
	s, _ := r[key].(string)
	return s
}

// Number returns the field key when it holds a number.
func (r LogRecord) Number(key string) (float64, bool) {
	n, ok := r[key].(float64)
	return n, ok
}

// parseRecords keeps the lines that are JSON objects.
func parseRecords(lines []string) []LogRecord {
	var out []LogRecord
	for _, line := range lines {
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var r LogRecord
		if json.Unmarshal([]byte(line), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}
