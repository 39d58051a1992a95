module github.com/portcullis-gw/portcullis/bench/acl

go 1.26.8

require (
	github.com/gaissmai/bart v0.30.0
	github.com/portcullis-gw/portcullis v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
	go4.org/netipx v0.0.0-20260823151212-3075585bcbeb
)

replace github.com/portcullis-gw/portcullis => ../..
