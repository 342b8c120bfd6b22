module devcluster/netserver

go 1.26.0
