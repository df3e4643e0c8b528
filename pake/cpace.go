package pake

import (
	"crypto/sha512"
	"errors"

	"github.com/gtank/ristretto255"
)

// The CPACE-RISTR255-SHA512 constants of draft-irtf-cfrg-cpace-21, Sections
// 6.2 and 8.3.
const (
	// dsi is G_Ristretto255.DSI.
	dsi = "CPaceRistretto255"
	// dsiISK is G.DSI || b"_ISK", the label of the ISK hash.
	dsiISK = dsi + "_ISK"
	// hashBlockSize is H.s_in_bytes for SHA-512: the zero padding of the
	// generator string fills the first compression-function block, so the
	// amount of hashing does not depend on a short password's length.
	hashBlockSize = 128
	// elementSize is the length of an encoded ristretto255 element and scalar.
	elementSize = 32
)

// errInvalidPoint is returned by scalarMultVfy where the draft's
// G.scalar_mult_vfy returns G.I: the peer's share does not decode, or decodes
// to (or multiplies to) the identity element.
var errInvalidPoint = errors.New("not a valid non-identity ristretto255 encoding")

// errZeroScalar: the sampled scalar is zero (probability 2^-252).
var errZeroScalar = errors.New("scalar is zero")

// appendPrependLen appends prepend_len(data) (draft Appendix A.1.1): the
// LEB128 encoding of len(data), then data.
func appendPrependLen(dst, data []byte) []byte {
	n := uint64(len(data))
	for {
		if n < 0x80 {
			dst = append(dst, byte(n))
			break
		}
		dst = append(dst, byte(n&0x7f)|0x80)
		n >>= 7
	}
	return append(dst, data...)
}

// lvCat is the draft's lv_cat: the concatenation of prepend_len of each
// argument. The encoding is prefix-free, which is what makes the plain
// SHA-512 of a transcript safe (draft Section 10.2).
func lvCat(args ...[]byte) []byte {
	size := 0
	for _, a := range args {
		size += len(a) + 10 // 10 bytes hold any LEB128 length of a uint64
	}
	out := make([]byte, 0, size)
	for _, a := range args {
		out = appendPrependLen(out, a)
	}
	return out
}

// generatorString is generator_string(DSI, PRS, CI, sid, s_in_bytes) from
// draft Section 8.1 and Appendix A.2.
func generatorString(prs, ci, sid []byte) []byte {
	zpad := hashBlockSize - 1 - len(appendPrependLen(nil, prs)) - len(appendPrependLen(nil, []byte(dsi)))
	zpad = max(zpad, 0)
	return lvCat([]byte(dsi), prs, make([]byte, zpad), ci, sid)
}

// calculateGenerator is G_Ristretto255.calculate_generator (draft Section
// 8.3): SHA-512 of the generator string, mapped to the group with the
// ristretto255 element derivation (one-way map from 64 uniform bytes).
func calculateGenerator(prs, ci, sid []byte) *ristretto255.Element {
	genStr := generatorString(prs, ci, sid)
	h := sha512.Sum512(genStr)
	clear(genStr) // it holds the password
	g := ristretto255.NewElement().FromUniformBytes(h[:])
	clear(h[:])
	return g
}

// scalarFromBytes interprets 32 little-endian bytes as a scalar after clearing
// the bits above G.group_size_bits = 252, the sampling the draft recommends
// for ristretto255 (Section 8.3). The result is always below the group order,
// so the decode cannot fail; a zero scalar is refused because it would make
// our share the identity element.
func scalarFromBytes(b []byte) (*ristretto255.Scalar, error) {
	if len(b) != elementSize {
		return nil, errors.New("scalar is not 32 bytes")
	}
	var buf [elementSize]byte
	copy(buf[:], b)
	buf[elementSize-1] &= 0x0f
	defer clear(buf[:])
	s := ristretto255.NewScalar()
	if err := s.Decode(buf[:]); err != nil {
		return nil, err
	}
	if s.Equal(ristretto255.NewScalar()) == 1 {
		return nil, errZeroScalar
	}
	return s, nil
}

// scalarMult is G.scalar_mult: encode(y * g).
func scalarMult(y *ristretto255.Scalar, g *ristretto255.Element) []byte {
	return ristretto255.NewElement().ScalarMult(y, g).Encode(make([]byte, 0, elementSize))
}

// scalarMultVfy is G.scalar_mult_vfy (draft Section 8.3) with its G.I output
// turned into an error: the peer's encoded share x must be a canonical
// encoding of a group element other than the identity, and so must y*x.
// ristretto255 Decode rejects every non-canonical encoding (RFC 9496 Section
// 4.3.1) but accepts the identity, so that is checked here.
func scalarMultVfy(y *ristretto255.Scalar, x []byte) ([]byte, error) {
	p := ristretto255.NewElement()
	if err := p.Decode(x); err != nil {
		return nil, errInvalidPoint
	}
	identity := ristretto255.NewElement()
	if p.Equal(identity) == 1 {
		return nil, errInvalidPoint
	}
	k := ristretto255.NewElement().ScalarMult(y, p)
	if k.Equal(identity) == 1 {
		return nil, errInvalidPoint
	}
	return k.Encode(make([]byte, 0, elementSize)), nil
}

// transcriptIR is transcript_ir(Ya, ADa, Yb, ADb) (draft Appendix A.3.4): the
// initiator's message always comes first, so the two roles cannot be swapped
// without changing ISK.
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// iskInput is the string hashed into ISK: lv_cat(G.DSI || b"_ISK", sid, K) ||
// transcript_ir(Ya, ADa, Yb, ADb) (draft Section 7.2).
func iskInput(sid, k, ya, ada, yb, adb []byte) []byte {
	return append(lvCat([]byte(dsiISK), sid, k), transcriptIR(ya, ada, yb, adb)...)
}

// deriveISK is ISK = H.hash(iskInput(...)) with H = SHA-512.
func deriveISK(sid, k, ya, ada, yb, adb []byte) [sha512.Size]byte {
	in := iskInput(sid, k, ya, ada, yb, adb)
	isk := sha512.Sum512(in)
	clear(in)
	return isk
}
