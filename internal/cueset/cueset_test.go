package cueset

import (
	"testing"

	"cuelang.org/go/cue/cuecontext"
)

func TestApply(t *testing.T) {
	src := "package x\n\nbase: {\n\tn: 8 // keep\n\tnative: batch_size: 2\n}\nexecution: cycles: 2\n"
	cases := []struct {
		sets []string
		want string
	}{
		{[]string{"base.n=10"}, "package x\n\nbase: {\n\tn: 10 // keep\n\tnative: batch_size: 2\n}\nexecution: cycles: 2\n"},
		{[]string{"base.native.batch_size=[1, 4]"}, "package x\n\nbase: {\n\tn: 8 // keep\n\tnative: batch_size: [1, 4]\n}\nexecution: cycles: 2\n"},
		{[]string{"base.model=random:llama-15m"}, src + "\n// --set\nbase: model: \"random:llama-15m\"\n"},
		{[]string{"execution.order=shuffled", "execution.cycles=3"}, "package x\n\nbase: {\n\tn: 8 // keep\n\tnative: batch_size: 2\n}\nexecution: cycles: 3\n\n// --set\nexecution: order: \"shuffled\"\n"},
	}
	for _, c := range cases {
		var sets []Set
		for _, a := range c.sets {
			s, err := Parse(a)
			if err != nil {
				t.Fatal(err)
			}
			sets = append(sets, s)
		}
		got, err := Apply("x.cue", []byte(src), sets)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("%v:\ngot  %q\nwant %q", c.sets, got, c.want)
		}
		if v := cuecontext.New().CompileBytes(got); v.Err() != nil {
			t.Errorf("%v: result does not compile: %v", c.sets, v.Err())
		}
	}
}

func TestValueText(t *testing.T) {
	for in, want := range map[string]string{
		"4": "4", "-1": "-1", "0.5": "0.5", "true": "true", "null": "null",
		`"4"`: `"4"`, "[1, 4]": "[1, 4]", "{a: 1}": "{a: 1}",
		"fp32": `"fp32"`, "random:llama-15m": `"random:llama-15m"`, "eight": `"eight"`,
		"": `""`, "a b": `"a b"`, "[x]": `"[x]"`,
	} {
		if got := ValueText(in); got != want {
			t.Errorf("ValueText(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseBad(t *testing.T) {
	for _, a := range []string{"n", "=4", "a..b=1", "a.b-c=1"} {
		if _, err := Parse(a); err == nil {
			t.Errorf("Parse(%q): no error", a)
		}
	}
}
