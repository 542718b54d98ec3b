package protocol

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// DecodeLimits bound what a CBOR decoder accepts from the outside, so that a
// hostile or damaged message costs little memory and time.
type DecodeLimits struct {
	MaxBytes        int // whole message
	MaxNestedLevels int // arrays, maps and tags inside each other
	MaxArrayLen     int // elements of one array
	MaxMapPairs     int // pairs of one map
	AllowTags       bool
}

// Default limits. Messages are an MQTT payload; a batch of 500 redemptions
// of roughly 150 bytes each fits in MaxMessageBytes with room to spare.
const (
	MaxMessageBytes = 256 << 10
	// MaxPacketBytes is the largest MQTT packet a broker of Punchcard's
	// should accept (mochi's MaximumPacketSize, Mosquitto's
	// max_packet_size): a payload of MaxMessageBytes plus 4 KiB for the
	// fixed header, the topic (two IDs of MaxIDLen) and properties.
	MaxPacketBytes    = MaxMessageBytes + 4<<10
	MaxNestedLevels   = 8
	MaxArrayLen       = 4096
	MaxMapPairs       = 256
	MaxBatchSize      = 1000 // redemptions in one batch message
	DefaultBatchSize  = 256
	MaxSnapshotBytes  = 64 << 20
	MaxSnapshotNested = 24
)

// MessageLimits are the limits for MQTT envelopes and their bodies.
var MessageLimits = DecodeLimits{
	MaxBytes:        MaxMessageBytes,
	MaxNestedLevels: MaxNestedLevels,
	MaxArrayLen:     MaxArrayLen,
	MaxMapPairs:     MaxMapPairs,
}

// NewDecMode builds a strict decoder: duplicate map keys, indefinite
// lengths and (unless allowed) tags are refused, and the limits apply.
func NewDecMode(l DecodeLimits) (cbor.DecMode, error) {
	tags := cbor.TagsForbidden
	if l.AllowTags {
		tags = cbor.TagsAllowed
	}
	return cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           tags,
		MaxNestedLevels:  max(l.MaxNestedLevels, 4),
		MaxArrayElements: max(l.MaxArrayLen, 16),
		MaxMapPairs:      max(l.MaxMapPairs, 16),
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
}

// EncMode is the canonical (core deterministic) encoder used for every
// message, so the same value always gives the same bytes.
var EncMode = mustEncMode()

func mustEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(fmt.Sprintf("protocol: cbor enc mode: %v", err))
	}
	return em
}
