//go:build !chaos

package chaos

// longTag is set by the chaos build tag; PUNCHCARD_CHAOS=1 does the same.
const longTag = false
