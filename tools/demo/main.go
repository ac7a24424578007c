// Command demo tells the whole ptc-credentials story on this machine, with no AWS account and no
// Docker: for Docker Hub (minting, and staged for an organization that enforces SSO), GitHub
// Container Registry, Azure Container Registry (client secret, and federated through IAM
// outbound identity federation), GitLab, Chainguard (federated) and one Docker Hub organization
// credential replicated to three Regions in turn it creates a source
// secret, provisions a pull-through cache rule through the real provisioner
// (a CloudFormation Create), rotates the credential through Secrets Manager and the real rotator,
// has ECR validate the rule, and deletes it all again — printing what happened and a summary.
// Everything runs locally (see internal/localcloud). It never prints a token, password or secret
// value, and checks that before it exits.
//
//	go run ./tools/demo            # or: make demo
//
// Exit status: 0 when every step of every registry succeeded, 1 otherwise, 2 on bad flags.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localcloud"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil)) }

// run is the whole program. started, when set, is handed the cloud once it runs (tests read
// the secrets it created to scan the output for them).
func run(args []string, stdout, stderr io.Writer, started func(*localcloud.Cloud)) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rie := fs.String("rie", os.Getenv("PTC_RIE_BIN"), "prebuilt aws-lambda-rie for this machine (default: built from tools.mod; env PTC_RIE_BIN)")
	bootstrapDir := fs.String("bootstrap-dir", os.Getenv("PTC_BOOTSTRAP_DIR"), "directory of prebuilt <function>/bootstrap binaries for this machine (default: built; env PTC_BOOTSTRAP_DIR)")
	only := fs.String("registries", "", "comma-separated rows to run: ECR UpstreamRegistry values, or docker-hub-staged, azure-container-registry-federated, docker-hub-org-3-regions (default: all)")
	rotations := fs.Int("rotations", 0, "rotations per row (default: 2, the second shows the first token revoked; 1 for the three-Region row)")
	replication := fs.Duration("acr-replication", time.Second, "how long the ACR emulator refuses a new password, as ACR does while it replicates")
	showLogs := fs.Bool("logs", false, "print both functions' own output (JSON logs, EMF) at the end")
	ops := fs.Bool("ptc", true, "end with the operator's view: ptc status and ptc doctor of a broken hand-made secret")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	// Ctrl-C stops the scenario; Close then stops everything that was started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Everything printed is also kept, so the demo can check its own output for secrets.
	var said bytes.Buffer
	out := io.MultiWriter(stdout, &said)
	began := time.Now()

	fmt.Fprintf(out, "ptc-credentials demo: a local Secrets Manager, ECR, AWS STS and %s registries; the real\n", count(distinctRegistries()))
	fmt.Fprintln(out, "provisioner and rotator bootstraps under aws-lambda-rie. No AWS account, no Docker.")
	fmt.Fprintln(out, "Building the bootstraps and aws-lambda-rie (the go build cache makes this fast after the first time)...")
	cloud, err := localcloud.Start(ctx, localcloud.Options{RIEBin: *rie, BootstrapDir: *bootstrapDir, ACRReplicationDelay: *replication})
	if err != nil {
		fmt.Fprintf(stderr, "demo: starting the local cloud: %v\n", err)
		return 1
	}
	defer cloud.Close()
	if started != nil {
		started(cloud)
	}
	fmt.Fprintf(out, "  built in %s; started in %s:\n", localcloud.FormatDuration(cloud.BuildTime), localcloud.FormatDuration(cloud.StartTime))
	servers := [][2]string{
		{"Secrets Manager (localsm)", cloud.SecretsManagerURL + "  " + strings.Join(cloud.Regions, ", ")},
		{"ECR pull-through cache", cloud.ECRURL + "  " + strings.Join(cloud.Regions, ", ")},
		{"AWS STS and the issuer", cloud.STSURL},
	}
	for _, r := range cloud.Registries() {
		servers = append(servers, [2]string{r.Emulates, r.URL + "  " + r.Key})
	}
	servers = append(servers,
		[2]string{"rotator under RIE", cloud.Rotator.URL + "  " + cloud.Rotator.ARN},
		[2]string{"provisioner under RIE", cloud.Provisioner.URL + "  " + cloud.Provisioner.ARN})
	width := 0
	for _, l := range servers {
		width = max(width, len(l[0]))
	}
	for _, l := range servers {
		fmt.Fprintf(out, "    %-*s %s\n", width, l[0], l[1])
	}

	names := []string{}
	for _, r := range cloud.Registries() {
		names = append(names, r.Key)
	}
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	var results []localcloud.Result
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		results = append(results, cloud.RunScenario(ctx, out, strings.TrimSpace(name), localcloud.ScenarioOptions{Rotations: *rotations}))
	}

	fmt.Fprintln(out)
	localcloud.WriteSummary(out, results)
	failed := ctx.Err() != nil
	for _, r := range results {
		failed = failed || !r.OK()
	}
	handMade := ""
	if ctx.Err() == nil && *ops {
		var err error
		if handMade, err = operatorView(ctx, out, cloud); err != nil {
			fmt.Fprintf(out, "ptc: %v\n", err)
			failed = true
		}
	}
	if failed && ctx.Err() == nil {
		// The functions' own output says why; it is built to carry no secret (checked below).
		fmt.Fprintln(out, "\nSomething failed. The warnings and errors the functions logged (run with -logs for all):")
		for _, f := range []*localcloud.Function{cloud.Provisioner, cloud.Rotator} {
			fmt.Fprintf(out, "--- %s ---\n%s\n", f.Name, problems(f.Output(), 10))
		}
	} else if *showLogs {
		for _, f := range []*localcloud.Function{cloud.Provisioner, cloud.Rotator} {
			fmt.Fprintf(out, "\n--- %s output ---\n%s", f.Name, f.Output())
		}
	}

	secrets := len(cloud.Secrets())
	if handMade != "" && strings.Contains(said.String()+cloud.Transcript(), handMade) {
		fmt.Fprintln(out, "\nLEAK: the hand-made secret's value appears in the output")
		failed = true
	}
	if m := cloud.KeyMaterial(said.String() + cloud.Transcript()); len(m) > 0 {
		fmt.Fprintf(out, "\nLEAK: the output or the functions' logs hold what looks like a private key or a JWT (%s)\n", strings.Join(m, ", "))
		failed = true
	}
	if n := cloud.Leaks(said.String() + cloud.Transcript()); n > 0 {
		fmt.Fprintf(out, "\nLEAK: %d of the %d secret values this run created appear in the output or the functions' logs\n", n, secrets)
		failed = true
	} else {
		fmt.Fprintf(out, "\nNone of the %d secret values this run created (passwords, tokens, PATs, web identity tokens,\nChainguard tokens and pull-token JWTs, the ResponseURL signature) appears in this output, the functions' logs or CloudFormation's answers.\n", secrets)
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(out, "Interrupted after %s; everything started was stopped.\n", localcloud.FormatDuration(time.Since(began)))
	case failed:
		fmt.Fprintf(out, "FAILED after %s.\n", localcloud.FormatDuration(time.Since(began)))
	default:
		fmt.Fprintf(out, "All done in %s.\n", localcloud.FormatDuration(time.Since(began)))
	}
	if failed {
		return 1
	}
	return 0
}

// distinctRegistries is how many upstream registries the demo's rows cover (ECR
// UpstreamRegistry values; a registry in two modes counts once).
func distinctRegistries() int {
	seen := map[string]bool{}
	for _, r := range localcloud.Rows() {
		seen[r.Descriptor.Name] = true
	}
	return len(seen)
}

// count spells n the way the narrative does ("four"); past ten, in digits.
func count(n int) string {
	if words := []string{"no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}; n >= 0 && n < len(words) {
		return words[n]
	}
	return fmt.Sprint(n)
}

// problems returns the last n WARN and ERROR records of a function's output.
func problems(output string, n int) string {
	var lines []string
	for _, l := range strings.Split(output, "\n") {
		if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "(none)"
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
