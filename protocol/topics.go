package protocol

import "strings"

// Topic layout. Every topic starts with TopicRoot and the protocol's major
// version, then the tenant and the agent, so a broker ACL can confine an
// agent to its own subtree:
//
//	punchcard/v1/{tenant}/{agent}/up        agent → hub: Batch, AgentState (QoS 1)
//	punchcard/v1/{tenant}/{agent}/down      hub → agent: Ack, Resend, AllowanceRecall (QoS 1)
//	punchcard/v1/{tenant}/{agent}/snapshot  hub → agent: SnapshotAnnounce (QoS 1, retained)
const TopicRoot = "punchcard/v1"

// UpTopic is where an agent publishes.
func UpTopic(t TenantID, a AgentID) string {
	return TopicRoot + "/" + string(t) + "/" + string(a) + "/up"
}

// DownTopic is where the hub publishes to one agent.
func DownTopic(t TenantID, a AgentID) string {
	return TopicRoot + "/" + string(t) + "/" + string(a) + "/down"
}

// SnapshotTopic is the retained topic announcing an agent's snapshot version.
func SnapshotTopic(t TenantID, a AgentID) string {
	return TopicRoot + "/" + string(t) + "/" + string(a) + "/snapshot"
}

// UpFilter is the hub's subscription to every agent's up topic. With
// shareGroup set it becomes a shared subscription ($share/group/...) so that
// several hub replicas split the load.
func UpFilter(shareGroup string) string {
	f := TopicRoot + "/+/+/up"
	if shareGroup != "" {
		f = "$share/" + shareGroup + "/" + f
	}
	return f
}

// ParseUpTopic returns the tenant and agent an up topic names, and false if
// the topic is not an up topic or either name is not a valid ID (ValidateID).
func ParseUpTopic(topic string) (TenantID, AgentID, bool) {
	rest, ok := strings.CutPrefix(topic, TopicRoot+"/")
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[2] != "up" || ValidateID("tenant", parts[0]) != nil || ValidateID("agent", parts[1]) != nil {
		return "", "", false
	}
	return TenantID(parts[0]), AgentID(parts[1]), true
}
