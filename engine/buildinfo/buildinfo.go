// Package buildinfo says which batchlab is running: the module version and
// the commit it was built from, read from what the go command records in
// every binary (runtime/debug.ReadBuildInfo), so a result, a run log or a
// report can name the code that produced it.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Info is what a binary knows of its own build. Fields the build did not
// record are empty: `go test` binaries and `go run` carry no VCS settings.
type Info struct {
	Version   string `json:"version"`            // module version, "(devel)" for a local build
	Revision  string `json:"revision,omitempty"` // VCS commit
	Time      string `json:"time,omitempty"`     // commit time, RFC 3339
	Modified  bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	GoVersion string `json:"go_version"`
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown"}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one-line form: "batchlab (devel) 9a764be1c2d3 (modified) go1.26.0".
func (i Info) String() string {
	parts := []string{"batchlab", i.Version}
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		parts = append(parts, rev)
		if i.Modified {
			parts = append(parts, "(modified)")
		}
	}
	if i.GoVersion != "" {
		parts = append(parts, i.GoVersion)
	}
	return strings.Join(parts, " ")
}

// Short names the code in a few characters: the short commit, with a "+"
// when the tree was modified, or the version where no commit is known.
func (i Info) Short() string {
	if i.Revision == "" {
		return i.Version
	}
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if i.Modified {
		rev += "+"
	}
	return rev
}
