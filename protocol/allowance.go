package protocol

// AllowanceRequest is a till's request for more of a campaign's budget
// (POST /v1/agent/allowances). RequestID, chosen by the till, makes it
// idempotent: a retry with the same id (after a lost answer) gets the same
// grant back, never a second one.
type AllowanceRequest struct {
	Campaign  CampaignID `json:"campaign"`
	RequestID string     `json:"request_id,omitempty"`
}

// AllowanceReturn is what a till gives back of a campaign's allowance
// (POST /v1/agent/allowances/return); negative values are refused.
type AllowanceReturn struct {
	Campaign CampaignID `json:"campaign"`
	Count    int64      `json:"count"`
	Amount   int64      `json:"amount"`
}
