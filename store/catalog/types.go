package catalog

import (
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
)

// The catalog's types live in protocol/catalog, where the hub's services
// and any other store name them; these aliases keep this package's own
// code and tests reading as before.
type (
	Actor           = pcatalog.Actor
	AuditEntry      = pcatalog.AuditEntry
	Remembered      = pcatalog.Remembered
	Role            = pcatalog.Role
	Key             = pcatalog.Key
	Tenant          = pcatalog.Tenant
	SigningKeyInfo  = pcatalog.SigningKeyInfo
	Agent           = pcatalog.Agent
	Campaign        = pcatalog.Campaign
	Code            = pcatalog.Code
	CodeSpec        = pcatalog.CodeSpec
	GenerateRequest = pcatalog.GenerateRequest
	TokenRequest    = pcatalog.TokenRequest
	Token           = pcatalog.Token
	Customer        = pcatalog.Customer
	CustomerData    = pcatalog.CustomerData
)

// Roles (pcatalog.Role).
const (
	RolePlatform = pcatalog.RolePlatform
	RoleAdmin    = pcatalog.RoleAdmin
	RoleMarketer = pcatalog.RoleMarketer
	RoleSupport  = pcatalog.RoleSupport
	RoleAgent    = pcatalog.RoleAgent
	RoleReadOnly = pcatalog.RoleReadOnly
)

// MaxIdempotencyKey bounds an Idempotency-Key header.
const MaxIdempotencyKey = pcatalog.MaxIdempotencyKey

// System is the actor of changes the hub makes by itself (bootstrap).
var System = pcatalog.System

// MaskCode masks a code for callers who may not see it (pcatalog.MaskCode).
func MaskCode(s string) string { return pcatalog.MaskCode(s) }

// MaskAudit masks the codes an audit entry names (pcatalog.MaskAudit).
func MaskAudit(e AuditEntry) AuditEntry { return pcatalog.MaskAudit(e) }
