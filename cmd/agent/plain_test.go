package main

import "testing"

// TestPlainRemote pins which sync URLs draw the "sends its secret in
// clear" warning: a unix:// broker socket is on this machine (the
// Mosquitto tests run on one), like loopback.
func TestPlainRemote(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"unix:///tmp/pcmq1/mosquitto.sock", false},
		{"UNIX:///run/mosquitto/mqtt.sock", false},
		{"tcp://127.0.0.1:1883", false},
		{"tcp://localhost:1883", false},
		{"http://[::1]:8080", false},
		{"ssl://hub.example:8883", false},
		{"https://hub.example", false},
		{"tcp://hub.example:1883", true},
		{"http://10.0.0.7:8080", true},
	} {
		if got := plainRemote(tt.url); got != tt.want {
			t.Errorf("plainRemote(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
