package server_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/llenergymeasure/llem/pkg/archive/archivetest"
	"github.com/llenergymeasure/llem/pkg/archive/server"
	"github.com/llenergymeasure/llem/pkg/archive/verify"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
)

// FuzzDecodePush feeds arbitrary bodies to the push decoder and each
// record to verify.Check: nothing panics, and whatever is accepted is what
// its hash says, in canonical form, with bounded index fields. The seed
// corpus is in testdata/fuzz/FuzzDecodePush.
func FuzzDecodePush(f *testing.F) {
	good, _ := json.Marshal(archivetest.Request("seed", archivetest.Push(archivetest.Record(archivetest.Spec{}))))
	f.Add(good)
	f.Add([]byte(`{"schema_version":"llem-push/1","push_id":"p","records":[{"sha256":"00","record":{}}]}`))
	f.Add([]byte(`{"schema_version":"llem-push/1","push_id":"p","records":[{"sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","record":{}}]}`))
	f.Add([]byte(`{"schema_version":"llem-push/1","push_id":"p","records":[null]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := server.DecodePush(body, 1000)
		if e != nil {
			if e.Status < 400 || e.Status > 499 || e.Code == "" || e.Reason == "" {
				t.Fatalf("decode error without a 4xx, code and reason: %+v", e)
			}
			return
		}
		if req.SchemaVersion != wire.Version || len(req.Records) == 0 || len(req.Records) > 1000 {
			t.Fatalf("accepted a bad request: %+v", req)
		}
		for _, p := range req.Records {
			rec, rj := verify.Check(p)
			if rj != nil {
				if rj.Code == "" || rj.Reason == "" {
					t.Fatalf("rejection without code or reason: %+v", rj)
				}
				continue
			}
			h, err := wire.RecordHash(rec.Canonical)
			if err != nil || h != p.SHA256 || rec.SHA256 != p.SHA256 {
				t.Fatalf("accepted record does not hash to its sha256: %v", err)
			}
			c, _ := wire.Canonical(rec.Canonical)
			if !bytes.Equal(c, rec.Canonical) || bytes.Contains(c, []byte(`\u0000`)) {
				t.Fatal("stored form is not canonical or holds a NUL")
			}
			m := rec.Meta
			for _, s := range []string{m.Model, m.Backend, m.Precision, m.Study, m.RunID, m.GPU, m.LlemVersion, m.LlemCommit} {
				if len(s) > verify.MaxFieldLen {
					t.Fatalf("index field of %d bytes accepted", len(s))
				}
			}
		}
	})
}
