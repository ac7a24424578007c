package e2e

import (
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/awsenv"
)

// The emulator switch is a list of loopback endpoints. A deployment where someone set it to
// anything else ("1", a private address, a real host) must not start with a wider pin or with
// the pin silently off: each real bootstrap refuses at cold start and says which variable is
// wrong, before it reads any event.
func TestBadLoopbackStandinsStopTheColdStart(t *testing.T) {
	events := map[string]string{
		fnRotator:     `{"Step":"createSecret","SecretId":"ecr-pullthroughcache/cold","ClientRequestToken":"00000000-0000-0000-0000-000000000000"}`,
		fnProvisioner: `{"RequestType":"Create","StackId":"arn:aws:cloudformation:us-east-1:123456789012:stack/cold/1","RequestId":"cold","LogicalResourceId":"Cache"}`,
	}
	// The old boolean, and a list with one non-loopback entry (ParseStandins' own tests cover
	// the rest of the grammar).
	for fn, bad := range map[string]string{fnRotator: "1", fnProvisioner: "127.0.0.1:4001,10.0.0.5:443"} {
		{
			t.Run(fn, func(t *testing.T) {
				env := baseEnv(t, fn)
				env[awsenv.LoopbackStandinsVar] = bad
				if fn == fnProvisioner {
					env["ROTATION_LAMBDA_ARN"] = rotatorARN
				}
				f := startFunction(t, fn, env)
				inv := f.invoke(t, []byte(events[fn]))
				if inv.Status == 200 && strings.TrimSpace(string(inv.Body)) == "null" {
					t.Fatalf("%s ran with %s=%q", fn, awsenv.LoopbackStandinsVar, bad)
				}
				if out := f.out.String(); !strings.Contains(out, awsenv.LoopbackStandinsVar) || !strings.Contains(out, "loading configuration") {
					t.Fatalf("%s's output does not name %s:\n%s", fn, awsenv.LoopbackStandinsVar, out)
				}
			})
		}
	}
}
