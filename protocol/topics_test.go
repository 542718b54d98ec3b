package protocol_test

import (
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

func TestTopics(t *testing.T) {
	if got, want := protocol.UpTopic("acme", "till-1"), "punchcard/v1/acme/till-1/up"; got != want {
		t.Errorf("UpTopic = %q, want %q", got, want)
	}
	if got, want := protocol.DownTopic("acme", "till-1"), "punchcard/v1/acme/till-1/down"; got != want {
		t.Errorf("DownTopic = %q, want %q", got, want)
	}
	if got, want := protocol.SnapshotTopic("acme", "till-1"), "punchcard/v1/acme/till-1/snapshot"; got != want {
		t.Errorf("SnapshotTopic = %q, want %q", got, want)
	}
	if got, want := protocol.UpFilter(""), "punchcard/v1/+/+/up"; got != want {
		t.Errorf("UpFilter = %q, want %q", got, want)
	}
	if got, want := protocol.UpFilter("hubs"), "$share/hubs/punchcard/v1/+/+/up"; got != want {
		t.Errorf("UpFilter(hubs) = %q, want %q", got, want)
	}
	if !strings.HasPrefix(protocol.UpTopic("a", "b"), protocol.TopicRoot+"/") {
		t.Error("topics must start with TopicRoot")
	}
}

func TestParseUpTopic(t *testing.T) {
	tests := []struct {
		name, topic   string
		tenant, agent string
		wantOK        bool
	}{
		{name: "OK", topic: "punchcard/v1/acme/till-1/up", tenant: "acme", agent: "till-1", wantOK: true},
		{name: "OKRoundTrip", topic: protocol.UpTopic("t.1", "a_2"), tenant: "t.1", agent: "a_2", wantOK: true},
		{name: "ErrDown", topic: protocol.DownTopic("acme", "till-1")},
		{name: "ErrSnapshot", topic: protocol.SnapshotTopic("acme", "till-1")},
		{name: "ErrOtherRoot", topic: "punchcard/v2/acme/till-1/up"},
		{name: "ErrRootOnly", topic: "punchcard/v1"},
		{name: "ErrRootSlash", topic: "punchcard/v1/"},
		{name: "ErrNoAgent", topic: "punchcard/v1/acme/up"},
		{name: "ErrEmptyTenant", topic: "punchcard/v1//till-1/up"},
		{name: "ErrEmptyAgent", topic: "punchcard/v1/acme//up"},
		{name: "ErrExtraLevel", topic: "punchcard/v1/acme/till-1/x/up"},
		{name: "ErrTrailingSlash", topic: "punchcard/v1/acme/till-1/up/"},
		{name: "ErrWildcard", topic: "punchcard/v1/+/+/up"},
		{name: "ErrShared", topic: protocol.UpFilter("g")},
		{name: "ErrBadTenantChars", topic: "punchcard/v1/ac me/till-1/up"},
		{name: "ErrAgentTooLong", topic: "punchcard/v1/acme/" + strings.Repeat("a", protocol.MaxIDLen+1) + "/up"},
		{name: "ErrEmpty", topic: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, agent, ok := protocol.ParseUpTopic(tt.topic)
			if ok != tt.wantOK || string(tenant) != tt.tenant || string(agent) != tt.agent {
				t.Fatalf("ParseUpTopic(%q) = %q, %q, %v; want %q, %q, %v", tt.topic, tenant, agent, ok, tt.tenant, tt.agent, tt.wantOK)
			}
		})
	}
}
