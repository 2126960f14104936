package httpx_test

import (
	"net/http/httptest"
	"testing"

	"github.com/dgov/dgov/internal/platform/httpx"
)

func TestClientIP(t *testing.T) {
	proxies, err := httpx.ParseTrustedProxies("10.0.0.0/8", " 192.0.2.10 ", "2001:db8:ffff::/48", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		proxies httpx.TrustedProxies
		peer    string
		xff     []string
		want    string
	}{
		{"direct client", proxies, "198.51.100.1:4000", nil, "198.51.100.1"},
		{"direct client lies in XFF", proxies, "198.51.100.1:4000", []string{"1.2.3.4"}, "198.51.100.1"},
		{"no trusted proxies", nil, "10.0.0.1:4000", []string{"1.2.3.4"}, "10.0.0.1"},
		{"one trusted proxy", proxies, "10.0.0.1:4000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"client prepends a lie", proxies, "10.0.0.1:4000", []string{"1.2.3.4, 203.0.113.5"}, "203.0.113.5"},
		{"two trusted proxies", proxies, "10.0.0.1:4000", []string{"203.0.113.5, 192.0.2.10"}, "203.0.113.5"},
		{"several XFF headers", proxies, "10.0.0.1:4000", []string{"1.2.3.4", "203.0.113.5", "10.9.9.9"}, "203.0.113.5"},
		{"all trusted", proxies, "10.0.0.1:4000", []string{"10.0.0.2, 10.0.0.3"}, "10.0.0.2"},
		{"garbage stops the walk", proxies, "10.0.0.1:4000", []string{"203.0.113.5, bogus, 10.0.0.3"}, "10.0.0.3"},
		{"proxy without XFF", proxies, "10.0.0.1:4000", nil, "10.0.0.1"},
		{"XFF with port", proxies, "10.0.0.1:4000", []string{"203.0.113.5:5555"}, "203.0.113.5"},
		{"IPv6 client via proxy", proxies, "[2001:db8:ffff::1]:443", []string{"2001:db8:1::7"}, "2001:db8:1::7"},
		{"IPv4-mapped peer", proxies, "[::ffff:10.0.0.1]:443", []string{"203.0.113.5"}, "203.0.113.5"},
		{"unix socket peer", proxies, "@", nil, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := httpx.ClientIP(r, tt.proxies).String(); got != tt.want {
				t.Errorf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := httpx.ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Error("bad CIDR accepted")
	}
	if _, err := httpx.ParseTrustedProxies("proxy.local"); err == nil {
		t.Error("host name accepted")
	}
}
