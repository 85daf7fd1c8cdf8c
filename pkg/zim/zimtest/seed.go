package zimtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// seedFile is the seed format LoadSeed reads (the shape of dev/zim-seed.json):
// apps to serve and conversations to store.
type seedFile struct {
	Apps          []seedApp           `json:"apps"`
	Conversations []seedConversations `json:"conversations,omitempty"`
}

// seedApp is an app of a seedFile. ServerSecret is never written to logs or errors.
type seedApp struct {
	AppID        uint32 `json:"AppId"`
	ServerSecret string `json:"ServerSecret"`
}

// seedConversations are the conversations of one user of one app in a seedFile.
// UpdateTime may be left out (see Server.Seed).
type seedConversations struct {
	AppID      uint32             `json:"AppId"`
	FromUserID string             `json:"FromUserId"`
	List       []zim.Conversation `json:"List"`
}

// LoadSeed reads a seed (the format of dev/zim-seed.json, see "Seed format" in the package documentation) and applies it: each app is
// added or gets its secret rotated, and each conversation is stored as by Seed.
// Unknown fields, trailing data and invalid entries are errors that name the
// entry; nothing is applied then.
func (s *Server) LoadSeed(r io.Reader) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f seedFile
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("zimtest: seed: %w", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errors.New("zimtest: seed: data after the JSON object")
	}
	if err := f.validate(); err != nil {
		return fmt.Errorf("zimtest: seed: %w", err)
	}
	for _, a := range f.Apps {
		s.SetSecret(a.AppID, a.ServerSecret)
	}
	for _, c := range f.Conversations {
		s.Seed(c.AppID, c.FromUserID, c.List...)
	}
	return nil
}

// validate checks a seed; its errors name the entry, never a secret.
func (f *seedFile) validate() error {
	for i, a := range f.Apps {
		switch {
		case a.AppID == 0:
			return fmt.Errorf("apps[%d].AppId: must be a positive integer", i)
		case a.ServerSecret == "":
			return fmt.Errorf("apps[%d].ServerSecret: must not be empty", i)
		}
	}
	for i, c := range f.Conversations {
		if c.AppID == 0 {
			return fmt.Errorf("conversations[%d].AppId: must be a positive integer", i)
		}
		if err := checkID(c.FromUserID); err != nil {
			return fmt.Errorf("conversations[%d].FromUserId: %w", i, err)
		}
		for j, conv := range c.List {
			if err := checkID(conv.ConvID); err != nil {
				return fmt.Errorf("conversations[%d].List[%d].ConvId: %w", i, j, err)
			}
			if conv.ConvType != zim.ConvTypePeer && conv.ConvType != zim.ConvTypeGroup {
				return fmt.Errorf("conversations[%d].List[%d].ConvType: must be 0 (one-on-one) or 2 (group)", i, j)
			}
			if conv.UpdateTime < 0 {
				return fmt.Errorf("conversations[%d].List[%d].UpdateTime: must not be negative", i, j)
			}
		}
	}
	return nil
}

// checkID applies ZEGO's documented id rules: non-empty, at most 32 bytes.
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("must not be empty")
	case len(id) > zim.MaxIDBytes:
		return fmt.Errorf("must be at most %d bytes", zim.MaxIDBytes)
	}
	return nil
}
