package acl_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/portcullis-gw/portcullis/acl"
)

func ExampleParse() {
	rules, err := acl.Parse(strings.NewReader(`
# offices
10.0.0.0/8
!10.9.0.0/16   # the lab
10.9.8.7       # except its build server
2001:db8::/32
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	set, err := acl.New(rules)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range []string{"10.1.2.3", "10.9.1.1", "10.9.8.7", "::ffff:10.9.8.7", "192.0.2.1", "2001:db8::5"} {
		fmt.Printf("%-15s %v\n", a, set.Decide(netip.MustParseAddr(a)))
	}
	// Output:
	// 10.1.2.3        allowed by 10.0.0.0/8 (line 3)
	// 10.9.1.1        denied by !10.9.0.0/16 (line 4)
	// 10.9.8.7        allowed by 10.9.8.7/32 (line 5)
	// ::ffff:10.9.8.7 allowed by 10.9.8.7/32 (line 5)
	// 192.0.2.1       denied: no rule matches
	// 2001:db8::5     allowed by 2001:db8::/32 (line 6)
}

func ExampleParseList() {
	_, err := acl.ParseList("10.0.0.0/8, 192.168.1.1/24")
	fmt.Println(err)
	// Output:
	// item 2: "192.168.1.1/24": not a canonical prefix: use 192.168.1.0/24 (or 192.168.1.1/32 for the single address)
}

func ExampleHolder() {
	var current acl.Holder // denies everything until the first Store
	a := netip.MustParseAddr("10.1.2.3")
	fmt.Println(current.Allowed(a))

	rules, _ := acl.ParseList("10.0.0.0/8")
	set, _ := acl.New(rules)
	current.Store(set) // a reload builds a new Set and stores it the same way
	fmt.Println(current.Allowed(a))
	// Output:
	// false
	// true
}
