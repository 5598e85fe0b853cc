package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "9a764be1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7"},
		{Key: "vcs.time", Value: "2026-12-01T12:05:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	info := fromBuildInfo(bi)
	if info.Revision != bi.Settings[0].Value || info.Time != "2026-12-01T12:05:00Z" || !info.Modified {
		t.Fatalf("settings not read: %+v", info)
	}
	if got, want := info.String(), "batchlab (devel) 9a764be1c2d3 (modified) go1.26.0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := info.Short(), "9a764be1c2d3+"; got != want {
		t.Errorf("Short() = %q, want %q", got, want)
	}
}

func TestFromBuildInfoWithoutVCS(t *testing.T) {
	info := fromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.0"})
	if info.Version != "(devel)" || info.Revision != "" {
		t.Fatalf("got %+v", info)
	}
	if got, want := info.Short(), "(devel)"; got != want {
		t.Errorf("Short() = %q, want %q", got, want)
	}
	if got, want := info.String(), "batchlab (devel) go1.26.0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
