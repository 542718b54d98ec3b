package snapshot

import (
	"fmt"

	"github.com/punchcard/punchcard/protocol"
)

// generatedAtKey is GeneratedAt's CBOR key (the struct tag's keyasint).
const generatedAtKey = 7

// Stamp returns encoded (Encode's output) with GeneratedAt set to at:
// the bytes Encode would give for the snapshot with that time, without
// encoding it again. The hub encodes a snapshot once without the time,
// for its ETag (which covers everything but the time), and stamps the
// body it sends. It returns CodeMessageMalformed when encoded is not a
// snapshot's canonical encoding, and CodeMessageTooLarge as Encode does.
func Stamp(encoded []byte, at int64) ([]byte, error) {
	i, err := generatedAtValue(encoded)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeMessageMalformed, "snapshot: stamp: %v", err)
	}
	end, err := skipItem(encoded, i)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeMessageMalformed, "snapshot: stamp: %v", err)
	}
	out := make([]byte, 0, len(encoded)+9)
	out = append(out, encoded[:i]...)
	if at >= 0 {
		out = protocol.AppendCBORHead(out, 0, uint64(at))
	} else {
		out = protocol.AppendCBORHead(out, 1, uint64(-(at + 1)))
	}
	out = append(out, encoded[end:]...)
	if len(out) > protocol.MaxSnapshotBytes {
		return nil, protocol.Errorf(protocol.CodeMessageTooLarge, "snapshot is %d bytes, more than %d", len(out), protocol.MaxSnapshotBytes)
	}
	return out, nil
}

// generatedAtValue returns the offset of GeneratedAt's value in a
// snapshot's top-level map.
func generatedAtValue(b []byte) (int, error) {
	major, n, i, err := head(b, 0)
	if err != nil {
		return 0, err
	}
	if major != 5 {
		return 0, fmt.Errorf("not a map")
	}
	for range n {
		kmajor, key, next, err := head(b, i)
		if err != nil {
			return 0, err
		}
		if kmajor == 0 && key == generatedAtKey {
			return next, nil
		}
		if i, err = skipItem(b, i); err != nil {
			return 0, err
		}
		if i, err = skipItem(b, i); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("no generated_at")
}

// head reads the CBOR item head at b[i]: its major type, its argument
// (a length, a count or a value) and the offset after the head.
// Indefinite lengths (never in a canonical encoding) are refused.
func head(b []byte, i int) (major byte, arg uint64, next int, err error) {
	if i >= len(b) {
		return 0, 0, 0, fmt.Errorf("truncated at %d", i)
	}
	major, info := b[i]>>5, b[i]&0x1f
	i++
	switch {
	case info < 24:
		return major, uint64(info), i, nil
	case info <= 27:
		size := 1 << (info - 24)
		if len(b)-i < size {
			return 0, 0, 0, fmt.Errorf("truncated at %d", i)
		}
		var v uint64
		for _, c := range b[i : i+size] {
			v = v<<8 | uint64(c)
		}
		return major, v, i + size, nil
	}
	return 0, 0, 0, fmt.Errorf("unsupported item head %#x at %d", b[i-1], i-1)
}

// skipItem returns the offset after the CBOR item at b[i].
func skipItem(b []byte, i int) (int, error) {
	major, arg, next, err := head(b, i)
	if err != nil {
		return 0, err
	}
	switch major {
	case 0, 1, 7: // integers, simple values and floats: the head is all
		return next, nil
	case 2, 3: // byte and text strings
		if arg > uint64(len(b)-next) {
			return 0, fmt.Errorf("truncated string at %d", i)
		}
		return next + int(arg), nil
	case 6: // a tag and its item
		return skipItem(b, next)
	}
	items := arg // array
	if major == 5 {
		if arg > uint64(len(b)) {
			return 0, fmt.Errorf("map too long at %d", i)
		}
		items = 2 * arg
	}
	if items > uint64(len(b)-next) { // each item takes a byte at least
		return 0, fmt.Errorf("truncated container at %d", i)
	}
	for range items {
		if next, err = skipItem(b, next); err != nil {
			return 0, err
		}
	}
	return next, nil
}
