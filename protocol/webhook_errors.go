package protocol

import "net/http"

// CodeWebhookURLForbidden: a webhook endpoint's URL names, or resolves
// to, an address the hub does not call (loopback, private, link-local,
// multicast, unspecified or reserved), unless the hub runs with
// -webhook-allow-private (hub/webhooks/guard.go, docs/security.md).
const CodeWebhookURLForbidden Code = "webhook_url_forbidden"

func init() {
	codes[CodeWebhookURLForbidden] = codeInfo{http.StatusUnprocessableEntity, "The webhook URL points to a private, loopback or other internal address; use a public address."}
}
