package zimtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// adminPrefix starts the admin API's paths (after any mount prefix).
const adminPrefix = "/_zimtest/"

// maxAdminBody bounds an admin request body (a seed can be large).
const maxAdminBody = 16 << 20

// adminRoute returns the part of path after "/_zimtest/", if path is an admin path.
func adminRoute(path string) (string, bool) {
	i := strings.Index(path, adminPrefix)
	if i < 0 {
		return "", false
	}
	return path[i+len(adminPrefix):], true
}

// secretBody is the body of POST /_zimtest/secret.
type secretBody struct {
	AppID        uint32 `json:"AppId"`
	ServerSecret string `json:"ServerSecret"`
}

// adminError is the body of a refused admin call.
type adminError struct {
	Error string `json:"error"`
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request, route string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
	switch route {
	case "requests":
		switch r.Method {
		case http.MethodGet:
			adminJSON(w, http.StatusOK, s.Requests())
		case http.MethodDelete:
			s.ResetRequests()
			w.WriteHeader(http.StatusNoContent)
		default:
			adminMethod(w, "GET, DELETE")
		}
	case "faults":
		if r.Method != http.MethodPost {
			adminMethod(w, "POST")
			return
		}
		var f Fault
		if err := decodeStrict(r.Body, &f); err != nil {
			adminFail(w, http.StatusBadRequest, err)
			return
		}
		if err := f.validate(); err != nil {
			adminFail(w, http.StatusBadRequest, err)
			return
		}
		s.inject(f)
		w.WriteHeader(http.StatusNoContent)
	case "secret":
		if r.Method != http.MethodPost {
			adminMethod(w, "POST")
			return
		}
		var b secretBody
		if err := decodeStrict(r.Body, &b); err != nil {
			adminFail(w, http.StatusBadRequest, err)
			return
		}
		if b.AppID == 0 || b.ServerSecret == "" {
			adminFail(w, http.StatusBadRequest, errors.New("AppId and ServerSecret are required"))
			return
		}
		s.SetSecret(b.AppID, b.ServerSecret)
		w.WriteHeader(http.StatusNoContent)
	case "seed":
		if r.Method != http.MethodPost {
			adminMethod(w, "POST")
			return
		}
		if err := s.LoadSeed(r.Body); err != nil {
			adminFail(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "conversations":
		if r.Method != http.MethodGet {
			adminMethod(w, "GET")
			return
		}
		q := r.URL.Query()
		appID, err := strconv.ParseUint(q.Get("AppId"), 10, 32)
		if err != nil || q.Get("FromUserId") == "" {
			adminFail(w, http.StatusBadRequest, errors.New("query parameters AppId (a 32-bit number) and FromUserId are required"))
			return
		}
		convs := s.Conversations(uint32(appID), q.Get("FromUserId"))
		if convs == nil {
			convs = []zim.Conversation{}
		}
		adminJSON(w, http.StatusOK, convs)
	default:
		adminFail(w, http.StatusNotFound, fmt.Errorf("no admin endpoint %q", route))
	}
}

// decodeStrict decodes one JSON value, refusing unknown fields and trailing data.
func decodeStrict(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminFail(w http.ResponseWriter, status int, err error) {
	adminJSON(w, status, adminError{Error: err.Error()})
}

func adminMethod(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	adminFail(w, http.StatusMethodNotAllowed, errors.New("method not allowed; use "+allow))
}
