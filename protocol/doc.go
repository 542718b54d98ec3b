// Package protocol is the language the agent and the hub share: typed IDs,
// money, orders, redemptions, allowances, reason codes, the protocol version,
// MQTT topics and CBOR message envelopes.
//
// It imports only the standard library and github.com/fxamacker/cbor/v2, so
// that every other package can depend on it without pulling in SQLite, MQTT
// or HTTP.
package protocol
