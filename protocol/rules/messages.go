package rules

import "github.com/punchcard/punchcard/protocol"

// The codes' standard messages, looked up once: Code.Message is a map
// lookup, and an evaluation refuses hundreds of automatic campaigns.
var (
	msgBudgetExhausted  = protocol.CodeBudgetExhausted.Message()
	msgCampaignStopped  = protocol.CodeCampaignStopped.Message()
	msgCampaignUnknown  = protocol.CodeCampaignUnknown.Message()
	msgCodeExpired      = protocol.CodeCodeExpired.Message()
	msgCodeUsed         = protocol.CodeCodeUsed.Message()
	msgCustomerLimit    = protocol.CodeCustomerLimit.Message()
	msgCustomerRequired = protocol.CodeCustomerRequired.Message()
	msgNoEffect         = protocol.CodeNoEffect.Message()
	msgNoMatchingItems  = protocol.CodeNoMatchingItems.Message()
	msgNotEligible      = protocol.CodeNotEligible.Message()
	msgOutsideHours     = protocol.CodeOutsideHours.Message()
	msgWrongStore       = protocol.CodeWrongStore.Message()
)
