package portmap

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIGD is an Internet Gateway Device with one WANIPConnection:1
// service, enough to drive tryIGD without a router.
type fakeIGD struct {
	// conflicts is how many AddPortMapping calls answer 718 first;
	// permanentOnly answers 725 to a nonzero lease.
	conflicts     int
	permanentOnly bool

	mu      sync.Mutex
	calls   []string          // SOAP actions, in order
	mapped  map[string]string // external port -> internal client:port
	leases  []string
	deleted []string
}

const fakeDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
 <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
 <friendlyName>fake</friendlyName><UDN>uuid:fake</UDN>
 <deviceList><device>
  <deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><UDN>uuid:fake-wan</UDN>
  <deviceList><device>
   <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><UDN>uuid:fake-wanconn</UDN>
   <serviceList><service>
    <serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
    <serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
    <SCPDURL>/scpd.xml</SCPDURL><controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL>
   </service></serviceList>
  </device></deviceList>
 </device></deviceList>
</device>
</root>`

var soapArg = regexp.MustCompile(`<(New\w+)>([^<]*)</New\w+>`)

func (f *fakeIGD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/rootDesc.xml" {
		io.WriteString(w, fakeDesc)
		return
	}
	body, _ := io.ReadAll(r.Body)
	args := map[string]string{}
	for _, m := range soapArg.FindAllStringSubmatch(string(body), -1) {
		args[m[1]] = m[2]
	}
	action := r.Header.Get("SOAPAction")
	action = strings.Trim(action[strings.Index(action, "#")+1:], `"`)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, action)
	fault := func(code int, desc string) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>`+
			`<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">`+
			`<errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`, code, desc)
	}
	reply := func(inner string) {
		fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>`+
			`<u:%sResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">%s</u:%sResponse></s:Body></s:Envelope>`, action, inner, action)
	}
	switch action {
	case "GetExternalIPAddress":
		reply("<NewExternalIPAddress>203.0.113.9</NewExternalIPAddress>")
	case "AddPortMapping":
		if f.permanentOnly && args["NewLeaseDuration"] != "0" {
			fault(725, "OnlyPermanentLeasesSupported")
			return
		}
		if f.conflicts > 0 {
			f.conflicts--
			fault(718, "ConflictInMappingEntry")
			return
		}
		f.mapped[args["NewExternalPort"]] = args["NewInternalClient"] + ":" + args["NewInternalPort"]
		f.leases = append(f.leases, args["NewLeaseDuration"])
		reply("")
	case "DeletePortMapping":
		delete(f.mapped, args["NewExternalPort"])
		f.deleted = append(f.deleted, args["NewExternalPort"])
		reply("")
	default:
		fault(401, "Invalid Action")
	}
}

func TestTryIGD(t *testing.T) {
	for _, tc := range []struct {
		name          string
		conflicts     int
		permanentOnly bool
		samePort      bool
		lease         string
	}{
		{name: "port free", samePort: true, lease: "3600"},
		{name: "port taken", conflicts: 1, lease: "3600"},
		{name: "only permanent leases", permanentOnly: true, samePort: true, lease: "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIGD{conflicts: tc.conflicts, permanentOnly: tc.permanentOnly, mapped: map[string]string{}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			loc, _ := url.Parse(srv.URL + "/rootDesc.xml")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			l, err := tryIGD(ctx, loc, testRequest())
			if err != nil {
				t.Fatal(err)
			}
			port := fmt.Sprint(l.external.Port())
			if l.external.Addr().String() != "203.0.113.9" || (port == "5900") != tc.samePort {
				t.Errorf("external %s, want 203.0.113.9 and same port %v", l.external, tc.samePort)
			}
			f.mu.Lock()
			if got := f.mapped[port]; got != "127.0.0.1:5900" {
				t.Errorf("router maps %s to %q, want 127.0.0.1:5900", port, got)
			}
			if got := f.leases[len(f.leases)-1]; got != tc.lease {
				t.Errorf("lease %s s, want %s", got, tc.lease)
			}
			f.mu.Unlock()

			if _, _, err := l.renew(ctx); err != nil {
				t.Fatalf("renew: %v", err)
			}
			if err := l.remove(ctx); err != nil {
				t.Fatalf("remove: %v", err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.mapped) != 0 || len(f.deleted) != 1 || f.deleted[0] != port {
				t.Errorf("after remove: mapped %v, deleted %v", f.mapped, f.deleted)
			}
		})
	}
}

// TestTryIGDRefusesForeignControlURL: a description whose URLBase points
// at another machine must not redirect our requests there.
func TestTryIGDRefusesForeignControlURL(t *testing.T) {
	hits := make(chan string, 8)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits <- r.URL.Path }))
	defer other.Close()
	desc := strings.Replace(fakeDesc, "<controlURL>/ctl</controlURL>",
		"<controlURL>"+strings.Replace(other.URL, "127.0.0.1", "127.0.0.2", 1)+"/ctl</controlURL>", 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, desc) }))
	defer srv.Close()
	loc, _ := url.Parse(srv.URL + "/rootDesc.xml")
	if _, err := tryIGD(context.Background(), loc, testRequest()); err == nil || !strings.Contains(err.Error(), "not the device") {
		t.Fatalf("tryIGD = %v, want a refusal of the foreign control URL", err)
	}
	select {
	case p := <-hits:
		t.Fatalf("request sent to the other host: %s", p)
	default:
	}
}
