package study

import (
	"bytes"
	_ "embed"
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// marshalFinite encodes v, indented, as encoding/json would, except that
// NaN and ±Inf, which encoding/json refuses and which diverged runs, early
// noise estimates and undefined ratios produce, are written as null.
// Decoding gives 0 (or a nil pointer) for them.
func marshalFinite(v any) ([]byte, error) {
	compact, err := appendFinite(nil, reflect.ValueOf(v))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func appendFinite(b []byte, v reflect.Value) ([]byte, error) {
	switch {
	case !v.IsValid():
		return append(b, "null"...), nil
	case (v.Type().Implements(marshalerType) || v.Type().Implements(textMarshalerType)) && (v.Kind() != reflect.Pointer || !v.IsNil()):
		return appendJSON(b, v.Interface()) // time.Time, data.Strategy
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if x := v.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
			return append(b, "null"...), nil
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return append(b, "null"...), nil
		}
		return appendFinite(b, v.Elem())
	case reflect.Struct:
		b, _, err := appendFields(append(b, '{'), v, true)
		if err != nil {
			return nil, err
		}
		return append(b, '}'), nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendFinite(b, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case reflect.Map:
		if v.IsNil() {
			return append(b, "null"...), nil
		}
		keys := v.MapKeys() // string or integer keys, as encoding/json writes them
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(keyText(a), keyText(b)) })
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, keyText(k)); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = appendFinite(b, v.MapIndex(k)); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return appendJSON(b, v.Interface())
}

// appendFields writes v's fields as encoding/json does, first telling
// whether none has been written yet: the fields of an embedded struct
// without a json name are written as the outer struct's own (the grid's
// FitResult embeds its Fit). encoding/json's rule for two fields of one
// name at different depths is not followed: no type written here has them.
func appendFields(b []byte, v reflect.Value, first bool) ([]byte, bool, error) {
	for i := range v.NumField() {
		sf, f := v.Type().Field(i), v.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Anonymous && name == "" {
			if f.Kind() == reflect.Pointer && !f.IsNil() {
				f = f.Elem()
			}
			if f.Kind() == reflect.Struct {
				var err error
				if b, first, err = appendFields(b, f, first); err != nil {
					return nil, first, err
				}
				continue
			}
		}
		omit := (strings.Contains(opts, "omitempty") && isEmpty(f)) || (strings.Contains(opts, "omitzero") && f.IsZero())
		if !sf.IsExported() || name == "-" || omit {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		var err error
		if b, err = appendJSON(b, name); err != nil {
			return nil, first, err
		}
		b = append(b, ':')
		if b, err = appendFinite(b, f); err != nil {
			return nil, first, err
		}
	}
	return b, first, nil
}

// keyText is a map key as encoding/json writes it: a string as it is, an
// integer in decimal (the grid's smoothing windows are keyed by batch size).
func keyText(k reflect.Value) string {
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(k.Uint(), 10)
	}
	return k.String()
}

func appendJSON(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	return append(b, j...), err
}

// isEmpty is encoding/json's test for omitempty.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
