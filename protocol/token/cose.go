package token

import (
	"errors"
	"io"

	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/protocol"
)

// COSE constants (RFC 9052, RFC 9053).
const (
	coseSign1Tag  = 18
	headerAlg     = 1
	headerCrit    = 2
	headerKeyID   = 4
	algEdDSA      = -8
	sigContext    = "Signature1"
	maxHeaderSize = 128
)

// Decoders. The outer one allows tags because COSE_Sign1 is tag 18; the
// inner one, for the headers and the claims, allows none. Both refuse
// duplicate map keys and indefinite lengths, and bound nesting and sizes.
var (
	outerDec = mustDecMode(protocol.DecodeLimits{MaxBytes: MaxBytes, MaxNestedLevels: 4, MaxArrayLen: 16, MaxMapPairs: 16, AllowTags: true})
	innerDec = mustDecMode(protocol.DecodeLimits{MaxBytes: MaxBytes, MaxNestedLevels: 4, MaxArrayLen: 16, MaxMapPairs: 16})
	// claimsDec is innerDec that also refuses map keys the target struct
	// does not have: an unknown claim is never ignored.
	claimsDec = mustStrict(innerDec)
)

func mustStrict(dm cbor.DecMode) cbor.DecMode {
	o := dm.DecOptions()
	o.ExtraReturnErrors |= cbor.ExtraDecErrorUnknownField
	strict, err := o.DecMode()
	if err != nil {
		panic("token: cbor dec mode: " + err.Error())
	}
	return strict
}

func mustDecMode(l protocol.DecodeLimits) cbor.DecMode {
	dm, err := protocol.NewDecMode(l)
	if err != nil {
		panic("token: cbor dec mode: " + err.Error())
	}
	return dm
}

// sign1 is a parsed COSE_Sign1 whose signature is not yet checked.
type sign1 struct {
	Protected []byte // the serialized protected header, as signed
	Payload   []byte
	Signature []byte
	KeyID     protocol.KeyID
}

type sign1Wire struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected headerWire
	Payload     []byte
	Signature   []byte
}

// headerWire picks the header parameters we act on out of a header map;
// others (content type, …) are ignored, as RFC 9052 allows.
type headerWire struct {
	Alg  cbor.RawMessage `cbor:"1,keyasint"`
	Crit cbor.RawMessage `cbor:"2,keyasint"`
	Kid  cbor.RawMessage `cbor:"4,keyasint"`
}

// parseSign1 decodes the COSE_Sign1 structure and its protected header.
// Reason codes: token_oversized, token_truncated, token_too_deep,
// token_malformed, bad_algorithm.
func parseSign1(b []byte) (sign1, error) {
	if len(b) > MaxBytes {
		return sign1{}, protocol.Errorf(protocol.CodeTokenOversized, "This code holds %d bytes, more than %d; it is not genuine.", len(b), MaxBytes)
	}
	var tag cbor.RawTag
	if err := outerDec.Unmarshal(b, &tag); err != nil {
		return sign1{}, cborError(err)
	}
	if tag.Number != coseSign1Tag {
		return sign1{}, malformed("not a COSE_Sign1 message")
	}
	var w sign1Wire
	if err := outerDec.Unmarshal(tag.Content, &w); err != nil {
		return sign1{}, cborError(err)
	}
	if u := w.Unprotected; u.Alg != nil || u.Crit != nil || u.Kid != nil {
		return sign1{}, malformed("algorithm, crit and kid belong in the protected header")
	}
	if len(w.Payload) == 0 {
		return sign1{}, malformed("the claims are missing")
	}
	if len(w.Signature) == 0 {
		return sign1{}, malformed("the signature is missing")
	}
	kid, err := parseProtected(w.Protected)
	if err != nil {
		return sign1{}, err
	}
	return sign1{Protected: w.Protected, Payload: w.Payload, Signature: w.Signature, KeyID: kid}, nil
}

func parseProtected(b []byte) (protocol.KeyID, error) {
	if len(b) == 0 || len(b) > maxHeaderSize {
		return "", malformed("the protected header is missing or too large")
	}
	var h headerWire
	if err := innerDec.Unmarshal(b, &h); err != nil {
		return "", cborError(err)
	}
	if h.Crit != nil {
		return "", malformed("the header lists critical extensions this till does not know")
	}
	if h.Alg == nil {
		return "", protocol.Errorf(protocol.CodeBadAlgorithm, "This code names no signature algorithm; it is not genuine.")
	}
	var alg int64
	if err := innerDec.Unmarshal(h.Alg, &alg); err != nil || alg != algEdDSA {
		return "", protocol.NewError(protocol.CodeBadAlgorithm)
	}
	if h.Kid == nil {
		return "", malformed("the key id is missing")
	}
	var kid []byte
	if err := innerDec.Unmarshal(h.Kid, &kid); err != nil {
		return "", malformed("the key id is not a byte string")
	}
	if protocol.ValidateID("kid", string(kid)) != nil {
		return "", malformed("the key id is not valid")
	}
	return protocol.KeyID(kid), nil
}

// cborError maps a decoder error to a reason code.
func cborError(err error) error {
	var (
		deep  *cbor.MaxNestedLevelError
		arr   *cbor.MaxArrayElementsError
		pairs *cbor.MaxMapPairsError
	)
	switch {
	case errors.As(err, &deep):
		return protocol.NewError(protocol.CodeTokenTooDeep)
	case errors.As(err, &arr), errors.As(err, &pairs):
		return protocol.NewError(protocol.CodeTokenOversized)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return protocol.NewError(protocol.CodeTokenTruncated)
	default:
		return protocol.NewError(protocol.CodeTokenMalformed)
	}
}

func malformed(detail string) error {
	return protocol.Errorf(protocol.CodeTokenMalformed, "This code is damaged and cannot be read (%s).", detail)
}

// appendHead appends a CBOR head of major type mt (0..7 shifted by 5) and
// argument n, in the shortest form, as deterministic encoding requires.
func appendHead(dst []byte, mt byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, mt|byte(n))
	case n <= 0xff:
		return append(dst, mt|24, byte(n))
	case n <= 0xffff:
		return append(dst, mt|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(dst, mt|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(dst, mt|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

const (
	mtBytes = 2 << 5
	mtText  = 3 << 5
	mtArray = 4 << 5
	mtMap   = 5 << 5
	mtTag   = 6 << 5
)

func appendBytes(dst, b []byte) []byte {
	return append(appendHead(dst, mtBytes, uint64(len(b))), b...)
}

// encodeProtected returns the serialized protected header {1: -8, 4: kid}.
func encodeProtected(kid protocol.KeyID) []byte {
	dst := make([]byte, 0, 8+len(kid))
	dst = appendHead(dst, mtMap, 2)
	dst = append(dst, headerAlg, 0x20|byte(-1-algEdDSA)) // -8 is major type 1, argument 7
	dst = append(dst, headerKeyID)
	return appendBytes(dst, []byte(kid))
}

// sigStructure returns the bytes that are signed (RFC 9052 section 4.4):
// ["Signature1", protected, external_aad = h”, payload].
func sigStructure(protected, payload []byte) []byte {
	dst := make([]byte, 0, 24+len(protected)+len(payload))
	dst = appendHead(dst, mtArray, 4)
	dst = appendHead(dst, mtText, uint64(len(sigContext)))
	dst = append(dst, sigContext...)
	dst = appendBytes(dst, protected)
	dst = appendBytes(dst, nil)
	return appendBytes(dst, payload)
}

// encodeSign1 returns 18([protected, {}, payload, signature]).
func encodeSign1(protected, payload, sig []byte) []byte {
	dst := make([]byte, 0, 16+len(protected)+len(payload)+len(sig))
	dst = appendHead(dst, mtTag, coseSign1Tag)
	dst = appendHead(dst, mtArray, 4)
	dst = appendBytes(dst, protected)
	dst = appendHead(dst, mtMap, 0)
	dst = appendBytes(dst, payload)
	return appendBytes(dst, sig)
}
