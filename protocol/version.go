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
//	2 (2026-12-01): Redemption.Sale (key 19): the order lines, what was
//	  presented, the customer, the moment and the allowances a till decided
//	  on, so that the hub re-derives each fact's effect (effect_mismatch).
const Version = 2
