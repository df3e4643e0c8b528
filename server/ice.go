package server

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ICEServer is one entry of a WebRTC ICE server list, shaped like the
// browser's RTCIceServer and pion/webrtc's webrtc.ICEServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// TURNCredentials returns TURN credentials in the REST-API style of coturn
// (use-auth-secret / static-auth-secret) and pion/turn
// (LongTermTURNRESTAuthHandler): the username is "<unix expiry>:<user>" and
// the credential base64(HMAC-SHA1(secret, username)). A relay holding the
// same secret checks them without asking this server.
func TURNCredentials(secret, user string, expires time.Time) (username, credential string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidateICEURL checks a STUN or TURN URL (RFC 7064, RFC 7065) as given in
// the server's configuration.
func ValidateICEURL(s string) error {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return fmt.Errorf("server: ICE server %q: want stun:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT]", s)
	}
	switch scheme {
	case "stun", "stuns", "turn", "turns":
	default:
		return fmt.Errorf("server: ICE server %q: unknown scheme %q", s, scheme)
	}
	hostport, query, _ := strings.Cut(rest, "?")
	if hostport == "" || strings.Contains(hostport, "/") {
		return fmt.Errorf("server: ICE server %q: bad host", s)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil || !strings.HasPrefix(scheme, "turn") || len(q) != 1 ||
			(q.Get("transport") != "udp" && q.Get("transport") != "tcp") {
			return fmt.Errorf("server: ICE server %q: only turn URLs take a query, and only ?transport=udp or tcp", s)
		}
	}
	return nil
}

// iceServers builds the list for one session: STUN URLs as they are, TURN
// URLs with credentials for user valid until expires, or, without turn,
// no TURN URLs at all.
func iceServers(urls []string, secret, user string, expires time.Time, turn bool) []ICEServer {
	var stun, turns []string
	for _, u := range urls {
		if strings.HasPrefix(u, "turn") {
			turns = append(turns, u)
		} else {
			stun = append(stun, u)
		}
	}
	list := []ICEServer{}
	if len(stun) > 0 {
		list = append(list, ICEServer{URLs: stun})
	}
	if len(turns) > 0 && turn {
		name, cred := TURNCredentials(secret, user, expires)
		list = append(list, ICEServer{URLs: turns, Username: name, Credential: cred})
	}
	return list
}
