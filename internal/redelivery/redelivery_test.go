package redelivery

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	prod := Backoff{Base: time.Minute, Max: time.Hour}
	tests := []struct {
		name string
		b    Backoff
		n    int
		want time.Duration
	}{
		{"first receive", prod, 1, time.Minute},
		{"no receive count", prod, 0, time.Minute},
		{"negative receive count", prod, -3, time.Minute},
		{"second", prod, 2, 2 * time.Minute},
		{"sixth", prod, 6, 32 * time.Minute},
		{"seventh reaches the cap", prod, 7, time.Hour},
		{"twentieth", prod, 20, time.Hour},
		{"huge count does not overflow", prod, 1 << 30, time.Hour},
		{"scaled for tests", Backoff{Base: 2 * time.Second, Max: 30 * time.Second}, 4, 16 * time.Second},
		{"scaled, capped", Backoff{Base: 2 * time.Second, Max: 30 * time.Second}, 5, 30 * time.Second},
		{"rounded up to whole seconds", Backoff{Base: 1500 * time.Millisecond, Max: time.Minute}, 1, 2 * time.Second},
		{"cap above SQS's 12h", Backoff{Base: time.Hour, Max: 48 * time.Hour}, 10, 12 * time.Hour},
		{"base equals max", Backoff{Base: time.Hour, Max: time.Hour}, 3, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.b.Delay(tt.n); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

// TestBackoffSixHourOutage is the README's arithmetic: with the template's
// defaults, a record failing every receive is still in its queue after 6
// hours, with receives to spare before MaxReceiveCount.
func TestBackoffSixHourOutage(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: time.Minute, Max: time.Hour}
	const maxReceiveCount = 20
	var hidden time.Duration
	n := 0
	for n = 1; hidden < 6*time.Hour; n++ {
		hidden += b.Delay(n)
	}
	// n is the receive that comes after the outage: the record must still be
	// in the queue (not moved after its maxReceiveCount-th failure).
	if n > maxReceiveCount {
		t.Fatalf("a 6-hour outage needs %d receives, more than MaxReceiveCount %d", n, maxReceiveCount)
	}
	if n != 12 {
		t.Errorf("first receive after a 6-hour outage is the %d-th, want the 12th (README)", n)
	}
	var total time.Duration
	for i := 1; i < maxReceiveCount; i++ {
		total += b.Delay(i)
	}
	if total != 63*time.Minute+13*time.Hour {
		t.Errorf("the %d-th receive comes %v after the first, want 14h03m (README)", maxReceiveCount, total)
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	if Reason("") != "unknown" {
		t.Error("an empty reason must not be sent: SQS refuses empty String attributes")
	}
	short := "invalid_request: ConvType must be 0 (one-on-one) or 2 (group)"
	if Reason(short) != short {
		t.Errorf("Reason(%q) = %q", short, Reason(short))
	}
	long := strings.Repeat("é", 600)
	got := Reason(long)
	if len(got) > maxReason || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("long reason cut to %d bytes, valid UTF-8 %t", len(got), utf8.ValidString(got))
	}
}
