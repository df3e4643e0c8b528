package pake

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/gtank/ristretto255"
)

// vectorFile holds the CPACE-RISTR255-SHA512 test vectors transcribed from
// draft-irtf-cfrg-cpace-21, Appendix B.3 (and the string-utility vectors of
// Appendix A). The transcription was checked against the base64 JSON the
// draft embeds in B.3.9.
const vectorFile = "testdata/cpace-ristretto255-draft-irtf-cfrg-cpace-21.json"

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}

type vectors struct {
	Source      string `json:"source"`
	StringUtils struct {
		PrependLen []struct {
			Input      hexBytes `json:"input"`
			InputRange int      `json:"input_range"`
			Output     hexBytes `json:"output"`
		} `json:"prepend_len"`
		LvCat struct {
			Inputs []hexBytes `json:"inputs"`
			Output hexBytes   `json:"output"`
		} `json:"lv_cat"`
		TranscriptIR []struct {
			Ya, ADa, Yb, ADb, Output hexBytes
		} `json:"transcript_ir"`
	} `json:"string_utils"`
	Generator struct {
		PRS             hexBytes `json:"PRS"`
		ZpadLength      int      `json:"zpad_length"`
		DSI             hexBytes `json:"DSI"`
		CI              hexBytes `json:"CI"`
		SID             hexBytes `json:"sid"`
		GeneratorString hexBytes `json:"generator_string"`
		Hash            hexBytes `json:"hash"`
		G               hexBytes `json:"g"`
	} `json:"generator"`
	ADa             hexBytes `json:"ADa"`
	ADb             hexBytes `json:"ADb"`
	ScalarA         hexBytes `json:"ya"` // exact-case tags: "ya" and "Ya" differ only in case
	ShareA          hexBytes `json:"Ya"`
	ScalarB         hexBytes `json:"yb"`
	ShareB          hexBytes `json:"Yb"`
	K               hexBytes `json:"K"`
	TranscriptIR    hexBytes `json:"transcript_ir"`
	DSIISK          hexBytes `json:"DSI_ISK"`
	ISKInputIR      hexBytes `json:"isk_input_ir"`
	ISKIR           hexBytes `json:"ISK_IR"`
	SIDOutputIR     hexBytes `json:"sid_output_ir"`
	ScalarMultValid struct {
		S, X, Result hexBytes
	} `json:"scalar_mult_valid"`
	ScalarMultVfyInvalid struct {
		S   hexBytes `json:"s"`
		YI1 hexBytes `json:"Y_i1"`
		YI2 hexBytes `json:"Y_i2"`
	} `json:"scalar_mult_vfy_invalid"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", vectorFile, err)
	}
	if len(v.ScalarA) != 32 || len(v.ShareA) != 32 || len(v.ScalarB) != 32 || len(v.ShareB) != 32 || len(v.K) != 32 {
		t.Fatalf("%s: scalars or points missing", vectorFile)
	}
	return &v
}

func wantBytes(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", name, got, want)
	}
}

func TestVectorsStringUtils(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.StringUtils.PrependLen {
		in := []byte(tc.Input)
		if tc.InputRange > 0 {
			in = make([]byte, tc.InputRange)
			for i := range in {
				in[i] = byte(i)
			}
		}
		wantBytes(t, "prepend_len", appendPrependLen(nil, in), tc.Output)
	}
	args := make([][]byte, len(v.StringUtils.LvCat.Inputs))
	for i, a := range v.StringUtils.LvCat.Inputs {
		args[i] = a
	}
	wantBytes(t, "lv_cat", lvCat(args...), v.StringUtils.LvCat.Output)
	for _, tc := range v.StringUtils.TranscriptIR {
		wantBytes(t, "transcript_ir", transcriptIR(tc.Ya, tc.ADa, tc.Yb, tc.ADb), tc.Output)
	}
}

// TestPrependLenLong covers the multi-byte LEB128 lengths the draft's vectors
// stop short of.
func TestPrependLenLong(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0x3fff, []byte{0xff, 0x7f}},
		{0x4000, []byte{0x80, 0x80, 0x01}},
		{300, []byte{0xac, 0x02}},
	}
	for _, tc := range tests {
		got := appendPrependLen(nil, make([]byte, tc.n))
		if !bytes.Equal(got[:len(tc.want)], tc.want) || len(got) != len(tc.want)+tc.n {
			t.Errorf("prepend_len(%d bytes) header = %x, want %x", tc.n, got[:len(tc.want)], tc.want)
		}
	}
}

func TestVectorsGenerator(t *testing.T) {
	v := loadVectors(t)
	gv := v.Generator
	wantBytes(t, "DSI", []byte(dsi), gv.DSI)
	gs := generatorString(gv.PRS, gv.CI, gv.SID)
	wantBytes(t, "generator_string", gs, gv.GeneratorString)
	// The zero padding sits after lv(DSI) and lv(PRS) and its own length byte.
	if zpad := int(gs[1+len(dsi)+1+len(gv.PRS)]); zpad != gv.ZpadLength {
		t.Errorf("ZPAD length = %d, want %d", zpad, gv.ZpadLength)
	}
	h := sha512.Sum512(gs)
	wantBytes(t, "hash", h[:], gv.Hash)
	g := calculateGenerator(gv.PRS, gv.CI, gv.SID)
	wantBytes(t, "encoded generator g", g.Encode(nil), gv.G)
}

// TestVectorsExchange runs both sides of the draft's initiator-responder
// vector through the code path New and Finish use, with the draft's scalars
// and associated data injected.
func TestVectorsExchange(t *testing.T) {
	v := loadVectors(t)
	gv := v.Generator
	cfg := Config{Password: gv.PRS, Context: gv.CI, SessionID: gv.SID}

	cfg.Role = Initiator
	a, err := newExchange(cfg, v.ScalarA, v.ADa)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Role = Responder
	b, err := newExchange(cfg, v.ScalarB, v.ADb)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "Ya", a.Message(), v.ShareA)
	wantBytes(t, "Yb", b.Message(), v.ShareB)

	// K both ways, through the same scalar_mult_vfy Finish uses.
	ya, _ := scalarFromBytes(v.ScalarA)
	yb, _ := scalarFromBytes(v.ScalarB)
	ka, err := scalarMultVfy(ya, v.ShareB)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := scalarMultVfy(yb, v.ShareA)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "K = scalar_mult_vfy(ya,Yb)", ka, v.K)
	wantBytes(t, "K = scalar_mult_vfy(yb,Ya)", kb, v.K)

	wantBytes(t, "transcript_ir", transcriptIR(v.ShareA, v.ADa, v.ShareB, v.ADb), v.TranscriptIR)
	wantBytes(t, "DSI_ISK", []byte(dsiISK), v.DSIISK)
	wantBytes(t, "ISK input", iskInput(gv.SID, v.K, v.ShareA, v.ADa, v.ShareB, v.ADb), v.ISKInputIR)
	sidOut := sha512.Sum512(append([]byte("CPaceSidOutput"), transcriptIR(v.ShareA, v.ADa, v.ShareB, v.ADb)...))
	wantBytes(t, "sid_output_ir", sidOut[:], v.SIDOutputIR)

	ra, err := a.finish(b.Message(), v.ADb)
	if err != nil {
		t.Fatalf("initiator finish: %v", err)
	}
	rb, err := b.finish(v.ShareA, v.ADa)
	if err != nil {
		t.Fatalf("responder finish: %v", err)
	}
	wantBytes(t, "initiator ISK", ra.secret.isk[:], v.ISKIR)
	wantBytes(t, "responder ISK", rb.secret.isk[:], v.ISKIR)
}

func TestVectorsScalarMult(t *testing.T) {
	v := loadVectors(t)
	s, err := scalarFromBytes(v.ScalarMultValid.S)
	if err != nil {
		t.Fatal(err)
	}
	x := ristretto255.NewElement()
	if err := x.Decode(v.ScalarMultValid.X); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "scalar_mult(s, decode(X))", scalarMult(s, x), v.ScalarMultValid.Result)
	got, err := scalarMultVfy(s, v.ScalarMultValid.X)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "scalar_mult_vfy(s, X)", got, v.ScalarMultValid.Result)

	s, _ = scalarFromBytes(v.ScalarMultVfyInvalid.S)
	for name, y := range map[string][]byte{"Y_i1": v.ScalarMultVfyInvalid.YI1, "Y_i2 (G.I)": v.ScalarMultVfyInvalid.YI2} {
		if k, err := scalarMultVfy(s, y); err == nil {
			t.Errorf("scalar_mult_vfy(s, %s) = %x, want G.I (error)", name, k)
		}
	}
}
