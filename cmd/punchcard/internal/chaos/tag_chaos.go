//go:build chaos

package chaos

const longTag = true
