package protocol

// Version is the protocol version spoken between agents and the hub. It is
// carried in every MQTT envelope and snapshot. A peer refuses a message whose
// version is newer than its own with CodeUnsupportedVersion.
//
// History (newest last; never renumber):
//
//	1 (2026-11-23): first version. CBOR envelopes over MQTT, COSE_Sign1
//	  reward tokens with text prefix "PC1", redemption batches acknowledged
//	  by (agent, sequence) with a contiguous watermark.
const Version = 1
