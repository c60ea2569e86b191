package result

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// JSONSchema returns the JSON Schema (draft 2020-12) of Record, generated
// from the Go types: JSON names from `json` tags, descriptions from `doc`
// tags, pointers as nullable, omitempty fields as optional. The committed
// copy is docs/schema/record.schema.json; TestSchemaFresh fails when it is
// stale (refresh with `go test ./pkg/result -run TestSchemaFresh -update`).
func JSONSchema() ([]byte, error) {
	return schemaOf(reflect.TypeOf(Record{}), "record.schema.json", "llem result record "+SchemaVersion,
		"One run of one experiment in one cycle, as written by llem eval to records/<run_id>/cycle-<n>.json.")
}

// QualityJSONSchema is the JSON Schema of QualityRecord, the quality score
// of one run (records/<run_id>/quality.json, docs/quality.md), generated
// like JSONSchema; committed as docs/schema/quality.schema.json.
func QualityJSONSchema() ([]byte, error) {
	return schemaOf(reflect.TypeOf(QualityRecord{}), "quality.schema.json", "llem quality record "+SchemaVersion,
		"One run's lm-eval score and the energy of the scoring, as written by llem eval to records/<run_id>/quality.json.")
}

func schemaOf(t reflect.Type, file, title, description string) ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root := g.typeSchema(t)
	out := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         "https://github.com/llenergymeasure/llem/docs/schema/" + file,
		"title":       title,
		"description": description,
	}
	for k, v := range root.(map[string]any) {
		if k != "$ref" {
			out[k] = v
		}
	}
	// The root type is the document; its definition is inlined above.
	if ref, ok := root.(map[string]any)["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		for k, v := range g.defs[name].(map[string]any) {
			out[k] = v
		}
		delete(g.defs, name)
	}
	out["$defs"] = g.defs
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", file, err)
	}
	return append(b, '\n'), nil
}

type schemaGen struct{ defs map[string]any }

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

func (g *schemaGen) typeSchema(t reflect.Type) any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "arbitrary JSON"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := g.typeSchema(t.Elem())
		return map[string]any{"anyOf": []any{inner, map[string]any{"type": "null"}}}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": []any{"array", "null"}, "items": g.typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.typeSchema(t.Elem())}
	case reflect.Struct:
		name := t.Name()
		if _, done := g.defs[name]; !done {
			g.defs[name] = nil // guard against recursion
			g.defs[name] = g.structSchema(t)
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	}
	panic(fmt.Sprintf("result: no JSON Schema for %s", t))
}

func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		s := g.typeSchema(f.Type).(map[string]any)
		if doc := f.Tag.Get("doc"); doc != "" {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}, "description": doc}
			} else {
				s["description"] = doc
			}
		}
		props[name] = s
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	sort.Strings(required)
	return map[string]any{
		"type":                 "object",
		"properties":           props,
		"required":             required,
		"additionalProperties": false,
	}
}
