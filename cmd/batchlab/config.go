package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"
)

// configurable gives cmd --config FILE: a YAML or TOML file whose keys are
// cmd's flag names, read before the action; a flag given on the command
// line wins over the file. altsrc sets the flags; it would ignore a key
// that names no flag, so every key is checked here first (a typo in a
// config file must not pass silently), and the file is parsed here so that
// its errors are one line.
func configurable(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(fromFile(cmd.Flags),
		&cli.StringFlag{Name: "config", Usage: "read settings from `FILE` (.yaml, .yml or .toml; keys are the flag names, e.g. lr-scale: sqrt); flags given on the command line win"})
	before := cmd.Before
	cmd.Before = func(c *cli.Context) error {
		if err := applyConfig(c, cmd.Flags); err != nil {
			return err
		}
		if before != nil {
			return before(c)
		}
		return nil
	}
	return cmd
}

// fromFile wraps each flag of a kind altsrc can set so that it can be set
// from a file; other flags stay as they are and a file may not name them.
func fromFile(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		switch f := f.(type) {
		case *cli.BoolFlag:
			out[i] = altsrc.NewBoolFlag(f)
		case *cli.IntFlag:
			out[i] = altsrc.NewIntFlag(f)
		case *cli.Uint64Flag:
			out[i] = altsrc.NewUint64Flag(f)
		case *cli.Float64Flag:
			out[i] = altsrc.NewFloat64Flag(f)
		case *cli.StringFlag:
			out[i] = altsrc.NewStringFlag(f)
		case *cli.DurationFlag:
			out[i] = altsrc.NewDurationFlag(f)
		default: // list flags too: see setLists
			out[i] = f
		}
	}
	return out
}

// applyConfig sets, from --config's file, the flags not given on the
// command line.
func applyConfig(c *cli.Context, flags []cli.Flag) error {
	path := c.String("config")
	if path == "" {
		return nil
	}
	settings, err := readConfig(path)
	if err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	if err := checkConfig(c, flags, settings); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	values := map[any]any{}
	for k, v := range settings {
		values[k] = v
	}
	if err := altsrc.ApplyInputSourceValues(c, altsrc.NewMapInputSource(path, values), flags); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	if err := setLists(c, flags, settings); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	return nil
}

// setLists sets the list flags the file names and the command line does
// not. altsrc's list flags replace the flag's value without marking it
// set, so that c.IsSet, which the commands' checks rely on, would not see
// a list from a file; c.Set parses the list as the command line's
// "8,4" and marks it.
func setLists(c *cli.Context, flags []cli.Flag, settings map[string]any) error {
	for _, f := range flags {
		if !isList(f) || c.IsSet(f.Names()[0]) {
			continue
		}
		for _, n := range f.Names() {
			v, ok := settings[n]
			if !ok {
				continue
			}
			items, ok := v.([]any)
			if !ok {
				items = []any{v}
			}
			text := make([]string, len(items))
			for i, x := range items {
				text[i] = fmt.Sprint(x)
			}
			if err := c.Set(f.Names()[0], strings.Join(text, ",")); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
	}
	return nil
}

func isList(f cli.Flag) bool {
	switch f.(type) {
	case *cli.IntSliceFlag, *cli.Int64SliceFlag, *cli.Float64SliceFlag, *cli.StringSliceFlag:
		return true
	}
	return false
}

// readConfig reads a YAML or TOML file, chosen by its extension.
func readConfig(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	settings := map[string]any{}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		err = yaml.Unmarshal(b, &settings)
	case ".toml":
		err = toml.Unmarshal(b, &settings)
	default:
		return nil, fmt.Errorf("unknown format %q: name the file .yaml, .yml or .toml", ext)
	}
	if err != nil {
		return nil, fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return settings, nil
}

// checkConfig refuses a key that names no flag of the command (or one a
// file cannot set), and brings numbers to the types altsrc takes: TOML's
// integers are int64 and altsrc wants int; a float flag wants float64
// even where the file wrote 1 rather than 1.0. (Lists go through setLists
// as text, whatever their numbers' types.)
func checkConfig(c *cli.Context, flags []cli.Flag, settings map[string]any) error {
	floats := map[string]bool{}
	known := map[string]bool{}
	for _, f := range flags {
		if _, ok := f.(altsrc.FlagInputSourceExtension); !ok && !isList(f) {
			continue
		}
		_, isFloat := f.(*altsrc.Float64Flag)
		for _, n := range f.Names() {
			known[n] = n != "config" && n != "help"
			floats[n] = isFloat
		}
	}
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !known[k] {
			hint := "see " + c.Command.HelpName + " --help for its flags"
			if dashed := strings.ReplaceAll(k, "_", "-"); known[dashed] {
				hint = fmt.Sprintf("did you mean %q?", dashed)
			}
			return fmt.Errorf("%q is not a setting of %s (%s)", k, c.Command.HelpName, hint)
		}
		settings[k] = normalize(settings[k], floats[k])
	}
	return nil
}

func normalize(v any, float bool) any {
	switch v := v.(type) {
	case int64:
		return normalize(int(v), float)
	case int:
		if float {
			return float64(v)
		}
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalize(x, float)
		}
		return out
	}
	return v
}
