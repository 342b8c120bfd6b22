// kstatus computes the status that kstatus (sigs.k8s.io/cli-utils/pkg/kstatus), the
// library behind Flux's health checks and `kubectl wait`-like tools, gives each object:
// InProgress, Current, Failed, Terminating, NotFound or Unknown. The tests run it on live
// ExposedApps, so that what GitOps tools see is judged by the real library.
//
//	kubectl get xapp NAME -o json | kstatus      one object, or a List of them
//
// For each object it prints one JSON line: {"name": ..., "status": ..., "message": ...}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	// The unstructured JSON scheme keeps integers as int64, as the API server sends them.
	decoded, _, err := unstructured.UnstructuredJSONScheme.Decode(data, nil, nil)
	if err != nil {
		fail(fmt.Errorf("reading the object: %w", err))
	}
	var objects []*unstructured.Unstructured
	switch value := decoded.(type) {
	case *unstructured.UnstructuredList:
		for i := range value.Items {
			objects = append(objects, &value.Items[i])
		}
	case *unstructured.Unstructured:
		objects = append(objects, value)
	default:
		fail(fmt.Errorf("not an object or a List: %T", decoded))
	}
	out := json.NewEncoder(os.Stdout)
	for _, u := range objects {
		result, err := status.Compute(u)
		if err != nil {
			fail(fmt.Errorf("%s: %w", u.GetName(), err))
		}
		if err := out.Encode(verdict{u.GetName(), result.Status.String(), result.Message}); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}
