// Package qr turns reward tokens and plain codes into QR code images.
//
// It is the only package that imports github.com/skip2/go-qrcode. The
// library chooses the smallest symbol version and, for text made only of
// digits, upper-case letters and " $%*+-./:", encodes it in QR numeric and
// alphanumeric segments (5.5 bits a character) instead of byte mode (8 bits).
// Punchcard's token alphabet (digits and upper-case letters without I, O, Y,
// Z) and the default plain-code charset are chosen so this always happens;
// lower-case text would fall back to byte mode and need a larger symbol.
//
// The library draws its own four-module border and scales with
// nearest-neighbour sampling, which makes modules of uneven width when the
// image size is not a multiple of the symbol size. We therefore take its
// module bitmap without the border and draw it ourselves: every module is
// exactly ModuleSize pixels and the quiet zone is QuietZone modules.
package qr

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"sync"

	qrcode "github.com/skip2/go-qrcode"
)

// Level is a QR error-correction level.
type Level int

// The four QR error-correction levels, by the share of the symbol that can
// be damaged and still read.
const (
	LevelL Level = iota // about 7 %
	LevelM              // about 15 %
	LevelQ              // about 25 %
	LevelH              // about 30 %
)

// String returns the level's one-letter name.
func (l Level) String() string {
	switch l {
	case LevelL:
		return "L"
	case LevelM:
		return "M"
	case LevelQ:
		return "Q"
	case LevelH:
		return "H"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

func (l Level) recovery() (qrcode.RecoveryLevel, bool) {
	switch l {
	case LevelL:
		return qrcode.Low, true
	case LevelM:
		return qrcode.Medium, true
	case LevelQ:
		return qrcode.High, true // go-qrcode calls Q "High" and H "Highest".
	case LevelH:
		return qrcode.Highest, true
	}
	return 0, false
}

// Defaults for a new Encoder.
const (
	// DefaultLevel is Q, as the EU digital COVID certificate guidelines
	// recommend for signed tokens that are printed, shown on cracked phone
	// screens and scanned at tills.
	DefaultLevel = LevelQ
	// DefaultModuleSize is the width of one module in pixels.
	DefaultModuleSize = 8
	// DefaultQuietZone is the blank border in modules; ISO/IEC 18004 asks
	// for four.
	DefaultQuietZone = 4

	// MaxModuleSize bounds the image size a caller can ask for.
	MaxModuleSize = 64
	// MaxQuietZone bounds the border a caller can ask for.
	MaxQuietZone = 16
)

// Errors callers branch on. Returned errors wrap them with details.
var (
	ErrEmpty   = errors.New("qr: empty text")
	ErrTooLong = errors.New("qr: text too long for a QR code at this level")
	ErrOptions = errors.New("qr: invalid encoder options")
)

// pngBuffers lets PNG encodes reuse the deflate state (about 1 MB), which
// otherwise dominates the allocations of every image.
var pngBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() *png.EncoderBuffer {
	e, _ := b.p.Get().(*png.EncoderBuffer)
	return e
}

func (b *bufferPool) Put(e *png.EncoderBuffer) { b.p.Put(e) }

var _ png.EncoderBufferPool = (*bufferPool)(nil)

// Encoder renders text as QR code PNG images. Its fields are preset by
// NewEncoder and may be changed before use; an Encoder is safe for
// concurrent use as long as its fields are not changed.
type Encoder struct {
	// Level is the error-correction level. Default DefaultLevel (Q).
	Level Level
	// ModuleSize is the width and height of one module in pixels, 1 to
	// MaxModuleSize. Default DefaultModuleSize.
	ModuleSize int
	// QuietZone is the blank border on each side, in modules, 0 to
	// MaxQuietZone. Default DefaultQuietZone. Scanners need at least 2 in
	// practice.
	QuietZone int
}

// NewEncoder returns an Encoder with the default level, module size and
// quiet zone.
func NewEncoder() *Encoder {
	return &Encoder{Level: DefaultLevel, ModuleSize: DefaultModuleSize, QuietZone: DefaultQuietZone}
}

func (e *Encoder) check() (qrcode.RecoveryLevel, error) {
	rl, ok := e.Level.recovery()
	if !ok {
		return 0, fmt.Errorf("%w: unknown level %d", ErrOptions, int(e.Level))
	}
	if e.ModuleSize < 1 || e.ModuleSize > MaxModuleSize {
		return 0, fmt.Errorf("%w: module size %d outside 1..%d", ErrOptions, e.ModuleSize, MaxModuleSize)
	}
	if e.QuietZone < 0 || e.QuietZone > MaxQuietZone {
		return 0, fmt.Errorf("%w: quiet zone %d outside 0..%d", ErrOptions, e.QuietZone, MaxQuietZone)
	}
	return rl, nil
}

func (e *Encoder) code(text string) (*qrcode.QRCode, error) {
	rl, err := e.check()
	if err != nil {
		return nil, err
	}
	if text == "" {
		return nil, ErrEmpty
	}
	q, err := qrcode.New(text, rl)
	if err != nil {
		// go-qrcode's only failure for non-empty text is "content too long".
		return nil, fmt.Errorf("%w: %d bytes at level %s", ErrTooLong, len(text), e.Level)
	}
	q.DisableBorder = true
	return q, nil
}

// Version returns the QR symbol version (1 to 40) that text needs at the
// encoder's level; the symbol is 17+4*version modules wide.
func (e *Encoder) Version(text string) (int, error) {
	q, err := e.code(text)
	if err != nil {
		return 0, err
	}
	return q.VersionNumber, nil
}

// Image returns text as a two-colour image, black modules on white.
func (e *Encoder) Image(text string) (*image.Paletted, error) {
	q, err := e.code(text)
	if err != nil {
		return nil, err
	}
	bm := q.Bitmap()
	n := len(bm)
	side := (n + 2*e.QuietZone) * e.ModuleSize
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	off := e.QuietZone * e.ModuleSize
	for y, row := range bm {
		for x, dark := range row {
			if !dark {
				continue
			}
			// Fill one module: ModuleSize rows of ModuleSize pixels.
			for dy := 0; dy < e.ModuleSize; dy++ {
				start := img.PixOffset(off+x*e.ModuleSize, off+y*e.ModuleSize+dy)
				px := img.Pix[start : start+e.ModuleSize]
				for i := range px {
					px[i] = 1
				}
			}
		}
	}
	return img, nil
}

// PNG returns text as a PNG image.
func (e *Encoder) PNG(text string) ([]byte, error) {
	img, err := e.Image(text)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	// BestSpeed: a 1-bit image compresses well anyway, and the hub renders
	// codes in bulk.
	enc := png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: pngBuffers}
	if err := enc.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("qr: encode png: %w", err)
	}
	return b.Bytes(), nil
}

// WriteFile writes text as a PNG image to path, replacing any file there.
func (e *Encoder) WriteFile(path, text string) error {
	b, err := e.PNG(text)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("qr: %w", err)
	}
	return nil
}
