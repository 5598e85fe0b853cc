package runlog

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// field is one key of a record and its value.
type field struct {
	key   string
	value reflect.Value
}

// fieldsOf lists every exported field of the struct v that has a JSON
// name, in the struct's order, omitempty or not: a log row has the same
// keys on every line and every run, where encoding/json's omitempty would
// drop the zeros. Keys in skip are left out. (Written here: encoding/json
// cannot be told to ignore omitempty.)
func fieldsOf(v any, skip ...string) []field { return fieldsOfValue(reflect.ValueOf(v), skip...) }

// fieldsOfValue is fieldsOf on a reflect.Value: an addressable struct's
// fields can be set through it.
func fieldsOfValue(rv reflect.Value, skip ...string) []field {
	var fs []field
	for i := range rv.NumField() {
		sf := rv.Type().Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || key == "" || key == "-" || slices.Contains(skip, key) {
			continue
		}
		fs = append(fs, field{key, rv.Field(i)})
	}
	return fs
}

// keys are the fields' names, a CSV header.
func keys(fs []field) []string {
	ks := make([]string, len(fs))
	for i, f := range fs {
		ks[i] = f.key
	}
	return ks
}

// appendJSON appends the fields as one JSON object; a non-finite number
// (a diverged loss) is null, which encoding/json would refuse to write,
// and a nil list is [] rather than encoding/json's null.
func appendJSON(b []byte, fs []field) ([]byte, error) {
	b = append(b, '{')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, f.key)
		b = append(b, ':')
		switch {
		case isNonFinite(f.value):
			b = append(b, "null"...)
			continue
		case f.value.Kind() == reflect.Slice && f.value.IsNil():
			b = append(b, "[]"...) // an empty list is [], as an unset one reads
			continue
		}
		v, err := json.Marshal(f.value.Interface())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// csvCells are the fields' values as CSV cells: numbers as Go prints them
// in full precision (NaN and ±Inf as NaN, +Inf, -Inf), anything else as its
// JSON text.
func csvCells(fs []field) ([]string, error) {
	cells := make([]string, len(fs))
	for i, f := range fs {
		v := f.value
		switch v.Kind() {
		case reflect.Float32, reflect.Float64:
			cells[i] = strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			cells[i] = strconv.FormatInt(v.Int(), 10)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			cells[i] = strconv.FormatUint(v.Uint(), 10)
		case reflect.Bool:
			cells[i] = strconv.FormatBool(v.Bool())
		case reflect.String:
			cells[i] = v.String()
		default:
			j, err := json.Marshal(v.Interface())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.key, err)
			}
			cells[i] = string(j)
		}
	}
	return cells, nil
}

func isNonFinite(v reflect.Value) bool {
	if k := v.Kind(); k != reflect.Float32 && k != reflect.Float64 {
		return false
	}
	return math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0)
}

// Full encodes the struct v as a JSON object with every field that has a
// JSON name, whether or not the field is tagged omitempty: the manifest's
// config then names every setting, not only those that differ from zero.
func Full(v any) (json.RawMessage, error) {
	return appendJSON(nil, fieldsOf(v))
}
