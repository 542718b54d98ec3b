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
//	2 (2026-12-01): every down message (Ack, Resend, SnapshotAnnounce,
//	  AllowanceRecall) carries its recipient agent (envelope key 8) and an
//	  Ed25519 signature by the hub's key (key 9) over its type, version,
//	  id, tenant, sender, recipient, time and body (SignDown, VerifyDown);
//	  agents pin the hub's public key at registration and drop anything
//	  unsigned, badly signed or addressed to another agent. Up messages
//	  are not signed; a v2 hub still reads v1 agents' batches.
//	  Also Redemption.Sale (key 19): the order lines, what was
//	  presented, the customer, the moment and the allowances a till decided
//	  on, so that the hub re-derives each fact's effect (effect_mismatch).
//	  Snapshots list gift cards and codes of limited use by a keyed hash
//	  (HMAC-SHA256 under the tenant's code key, snapshot key 15), not in
//	  clear; the till hashes what is presented.
//	  Later, additive: Sale.Points (key 7), the customer's points a till
//	  decided with when it asked the hub online first (older hubs ignore
//	  it; an older till never sets it).
//	  Later, additive (issue 12): Redemption.Expires (key 20), when an
//	  earn's points expire as the rules engine computed it; the hub keeps
//	  the earn as a points lot expiring then (an older till never sets
//	  it: its lots never expire; an older hub ignores it).
//	  Later, additive (issue 12, referrals): rules.Campaign.Referral
//	  (campaign key 24) makes a code campaign a referral program; a till
//	  that ignores it decides such a code as a plain code and the hub's
//	  ingest checks the referral (referral_refused).
const Version = 2
