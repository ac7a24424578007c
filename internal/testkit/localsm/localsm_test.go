package localsm_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/fakeclock"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
)

var arnRE = regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-[A-Za-z0-9]{6}$`)

func TestCreateAndDescribe(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e := start(t, localsm.Options{Now: clk.Now})
	out, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("app/db"), ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("s3cr3t"),
		Description: aws.String("the db"), KmsKeyId: aws.String("alias/custom"),
		Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}, {Key: aws.String("env"), Value: aws.String("")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !arnRE.MatchString(aws.ToString(out.ARN)) || aws.ToString(out.Name) != "app/db" || aws.ToString(out.VersionId) != tok(1) {
		t.Fatalf("CreateSecret answered %+v", out)
	}
	d, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/db")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.ARN) != aws.ToString(out.ARN) || aws.ToString(d.Description) != "the db" || aws.ToString(d.KmsKeyId) != "alias/custom" {
		t.Errorf("DescribeSecret: %+v", d)
	}
	if got := d.VersionIdsToStages; len(got) != 1 || !slices.Equal(got[tok(1)], []string{"AWSCURRENT"}) {
		t.Errorf("VersionIdsToStages = %v", got)
	}
	if len(d.Tags) != 2 || aws.ToString(d.Tags[0].Key) != "team" || aws.ToString(d.Tags[1].Value) != "" {
		t.Errorf("Tags = %+v", d.Tags)
	}
	if !aws.ToTime(d.CreatedDate).Equal(clk.Now()) || d.RotationEnabled != nil || d.DeletedDate != nil {
		t.Errorf("dates/rotation: created %v rotation %v deleted %v", d.CreatedDate, d.RotationEnabled, d.DeletedDate)
	}

	// The same secret by full ARN and by partial ARN (without the random suffix).
	for _, id := range []string{aws.ToString(out.ARN), "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db"} {
		if _, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)}); err != nil {
			t.Errorf("DescribeSecret(%s): %v", id, err)
		}
	}
	for _, id := range []string{"app/other", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db", aws.ToString(out.ARN) + "x"} {
		_, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		wantCode(t, "DescribeSecret("+id+")", err, "ResourceNotFoundException")
	}
}

func TestCreateSecretRules(t *testing.T) {
	e := start(t, localsm.Options{})
	mk := func(name, token, value string) error {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(token)}
		if value != "" {
			in.SecretString = aws.String(value)
		}
		_, err := e.sm.CreateSecret(e.ctx, in)
		return err
	}
	wantCode(t, "create", mk("a", tok(1), "v"), "ok")
	wantCode(t, "retry with the same token and value", mk("a", tok(1), "v"), "ok")
	wantCode(t, "same token, other value", mk("a", tok(1), "w"), "ResourceExistsException")
	wantCode(t, "same name, new token", mk("a", tok(2), "v"), "ResourceExistsException")
	for _, bad := range []string{"has space", "star*", strings.Repeat("n", 513), "semi;colon"} {
		wantCode(t, "name "+bad, mk(bad, tok(3), "v"), "InvalidParameterException")
	}
	wantCode(t, "all allowed characters", mk("a-Z_0/+=.@", tok(3), "v"), "ok")
	wantCode(t, "short token", mk("b", "short", "v"), "InvalidParameterException")
	_, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("x"), SecretBinary: []byte("y")})
	wantCode(t, "both values", err, "InvalidParameterException")

	// A secret without a value has no version; its first PutSecretValue becomes AWSCURRENT even
	// when the caller names other labels.
	wantCode(t, "no value", mk("empty", tok(4), ""), "ok")
	if _, err := e.sm.GetSecretValue(e.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")}); code(err) != "ResourceNotFoundException" {
		t.Fatalf("GetSecretValue of a secret without value: %v", err)
	}
	p, err := e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty"), ClientRequestToken: aws.String(tok(5)), SecretString: aws.String("first"), VersionStages: []string{"CUSTOM"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.VersionStages; !slices.Contains(got, "AWSCURRENT") || !slices.Contains(got, "CUSTOM") {
		t.Errorf("first version stages = %v, want CUSTOM and AWSCURRENT", got)
	}

	// A name scheduled for deletion cannot be reused until the secret is gone.
	if _, err := e.sm.DeleteSecret(e.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "name of a deleted secret", mk("a", tok(6), "v"), "InvalidRequestException")
}

func TestGetSecretValue(t *testing.T) {
	e := start(t, localsm.Options{})
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("one")}); err != nil {
		t.Fatal(err)
	}
	put := func(n int, value string, stages ...string) {
		t.Helper()
		if _, err := e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(n)), SecretString: aws.String(value), VersionStages: stages}); err != nil {
			t.Fatal(err)
		}
	}
	put(2, "two")
	put(3, "three", "AWSPENDING")
	if _, err := e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(4)), SecretBinary: []byte{0, 1, 2}, VersionStages: []string{"BIN"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		id, stage     string
		want, wantVer string
		wantCode      string
	}{
		{name: "default is AWSCURRENT", want: "two", wantVer: tok(2)},
		{name: "by stage", stage: "AWSPREVIOUS", want: "one", wantVer: tok(1)},
		{name: "by id", id: tok(3), want: "three", wantVer: tok(3)},
		{name: "id and matching stage", id: tok(3), stage: "AWSPENDING", want: "three", wantVer: tok(3)},
		{name: "id and other stage", id: tok(3), stage: "AWSCURRENT", wantCode: "ResourceNotFoundException"},
		{name: "unknown id", id: tok(9), wantCode: "ResourceNotFoundException"},
		{name: "unknown stage", stage: "NOPE", wantCode: "ResourceNotFoundException"},
		{name: "malformed id", id: "short", wantCode: "InvalidParameterException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")}
			if tc.id != "" {
				in.VersionId = aws.String(tc.id)
			}
			if tc.stage != "" {
				in.VersionStage = aws.String(tc.stage)
			}
			out, err := e.sm.GetSecretValue(e.ctx, in)
			if tc.wantCode != "" {
				wantCode(t, tc.name, err, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.SecretString) != tc.want || aws.ToString(out.VersionId) != tc.wantVer || out.CreatedDate == nil {
				t.Errorf("got %q version %s", aws.ToString(out.SecretString), aws.ToString(out.VersionId))
			}
		})
	}
	out, err := e.sm.GetSecretValue(e.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s"), VersionStage: aws.String("BIN")})
	if err != nil || string(out.SecretBinary) != "\x00\x01\x02" || out.SecretString != nil {
		t.Fatalf("binary read: %v %+v", err, out)
	}
	// The message of a value-less version names what was asked for, never a value.
	e2 := start(t, localsm.Options{})
	if _, err := e2.sm.CreateSecret(e2.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	_, err = e2.sm.GetSecretValue(e2.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")})
	if code(err) != "ResourceNotFoundException" || !strings.Contains(err.Error(), "can't find the specified secret value for staging label: AWSCURRENT") {
		t.Fatalf("value-less read: %v", err)
	}
}

func TestPutSecretValue(t *testing.T) {
	e := start(t, localsm.Options{})
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("one")}); err != nil {
		t.Fatal(err)
	}
	put := func(n int, value string, stages ...string) (*secretsmanager.PutSecretValueOutput, error) {
		return e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(n)), SecretString: aws.String(value), VersionStages: stages})
	}
	stages := func() map[string][]string {
		t.Helper()
		d, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range d.VersionIdsToStages {
			slices.Sort(v)
		}
		return d.VersionIdsToStages
	}
	wantStages := func(step string, want map[string][]string) {
		t.Helper()
		got := stages()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: stages %v, want %v", step, got, want)
		}
	}

	if _, err := put(2, "two"); err != nil {
		t.Fatal(err)
	}
	wantStages("default stages", map[string][]string{tok(1): {"AWSPREVIOUS"}, tok(2): {"AWSCURRENT"}})
	out, err := put(2, "two", "OTHER")
	if err != nil || !slices.Equal(out.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("idempotent retry: %v %v (a retry is ignored, labels included)", err, out)
	}
	_, err = put(2, "changed")
	wantCode(t, "same token, different data", err, "ResourceExistsException")
	if strings.Contains(err.Error(), "changed") || strings.Contains(err.Error(), "two") {
		t.Fatalf("the error shows a secret value: %v", err)
	}
	if _, err := put(3, "three", "AWSPENDING", "X"); err != nil {
		t.Fatal(err)
	}
	_, err = put(3, "three-changed", "AWSPENDING")
	wantCode(t, "different data for a pending version", err, "ResourceExistsException")
	if _, err := put(4, "four", "X"); err != nil {
		t.Fatal(err)
	}
	wantStages("custom label moved", map[string][]string{tok(1): {"AWSPREVIOUS"}, tok(2): {"AWSCURRENT"}, tok(3): {"AWSPENDING"}, tok(4): {"X"}})
	if _, err := put(5, "five", "AWSCURRENT", "AWSPENDING"); err != nil {
		t.Fatal(err)
	}
	wantStages("AWSCURRENT moved, AWSPREVIOUS follows", map[string][]string{tok(2): {"AWSPREVIOUS"}, tok(4): {"X"}, tok(5): {"AWSCURRENT", "AWSPENDING"}})

	for _, tc := range []struct {
		name string
		in   secretsmanager.PutSecretValueInput
		want string
	}{
		{"no value", secretsmanager.PutSecretValueInput{SecretId: aws.String("s")}, "InvalidRequestException"},
		{"both values", secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("a"), SecretBinary: []byte("b")}, "InvalidParameterException"},
		{"empty stages", secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("a"), VersionStages: []string{}}, "InvalidParameterException"},
		{"rotation token too short", secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("a"), RotationToken: aws.String("short")}, "InvalidParameterException"},
		{"rotation token", secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("a"), RotationToken: aws.String(tok(7) + "-abc"), VersionStages: []string{"R"}}, "ok"},
		{"unknown secret", secretsmanager.PutSecretValueInput{SecretId: aws.String("nope"), SecretString: aws.String("a")}, "ResourceNotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sm.PutSecretValue(e.ctx, &tc.in)
			wantCode(t, tc.name, err, tc.want)
		})
	}
}

func TestUpdateSecretVersionStage(t *testing.T) {
	type op struct {
		move, remove int // version numbers; 0 = not given
		label        string
		want         string
		stages       string // fmt of stages after, when the op succeeds
	}
	cases := []struct {
		name string
		ops  []op
	}{
		{"move AWSCURRENT needs RemoveFromVersionId", []op{
			{label: "AWSCURRENT", move: 3, want: "InvalidParameterException"},
		}},
		{"RemoveFromVersionId must be where the label is", []op{
			{label: "AWSCURRENT", move: 3, remove: 1, want: "InvalidParameterException"},
		}},
		{"move AWSCURRENT, AWSPREVIOUS follows", []op{
			{label: "AWSCURRENT", move: 3, remove: 2, want: "ok", stages: "1:[] 2:[AWSPREVIOUS] 3:[AWSCURRENT AWSPENDING]"},
		}},
		{"roll back to AWSPREVIOUS", []op{
			{label: "AWSCURRENT", move: 1, remove: 2, want: "ok", stages: "1:[AWSCURRENT] 2:[AWSPREVIOUS] 3:[AWSPENDING]"},
		}},
		{"moving to where it is is a no-op", []op{
			{label: "AWSCURRENT", move: 2, want: "ok", stages: "1:[AWSPREVIOUS] 2:[AWSCURRENT] 3:[AWSPENDING]"},
		}},
		{"remove AWSPENDING", []op{
			{label: "AWSPENDING", remove: 3, want: "ok", stages: "1:[AWSPREVIOUS] 2:[AWSCURRENT] 3:[]"},
		}},
		{"remove a label from a version without it", []op{
			{label: "AWSPENDING", remove: 2, want: "InvalidParameterException"},
		}},
		{"AWSCURRENT cannot just be removed", []op{
			{label: "AWSCURRENT", remove: 2, want: "InvalidParameterException"},
		}},
		{"custom label: add, then move needs RemoveFromVersionId", []op{
			{label: "MINE", move: 1, want: "ok", stages: "1:[AWSPREVIOUS MINE] 2:[AWSCURRENT] 3:[AWSPENDING]"},
			{label: "MINE", move: 3, want: "InvalidParameterException"},
			{label: "MINE", move: 3, remove: 1, want: "ok", stages: "1:[AWSPREVIOUS] 2:[AWSCURRENT] 3:[AWSPENDING MINE]"},
		}},
		{"unknown versions", []op{
			{label: "MINE", move: 9, want: "InvalidParameterException"},
			{label: "AWSPENDING", move: 1, remove: 9, want: "InvalidParameterException"},
		}},
		{"neither move nor remove", []op{{label: "MINE", want: "InvalidParameterException"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, localsm.Options{})
			if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("one")}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(2)), SecretString: aws.String("two")}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(3)), SecretString: aws.String("three"), VersionStages: []string{"AWSPENDING"}}); err != nil {
				t.Fatal(err)
			}
			for i, o := range tc.ops {
				in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("s"), VersionStage: aws.String(o.label)}
				if o.move != 0 {
					in.MoveToVersionId = aws.String(tok(o.move))
				}
				if o.remove != 0 {
					in.RemoveFromVersionId = aws.String(tok(o.remove))
				}
				_, err := e.sm.UpdateSecretVersionStage(e.ctx, in)
				wantCode(t, fmt.Sprintf("op %d", i), err, o.want)
				if o.stages != "" {
					if got := allStages(t, e); got != o.stages {
						t.Fatalf("op %d: stages %s, want %s", i, got, o.stages)
					}
				}
			}
		})
	}
}

// allStages renders every version (deprecated ones too) as "n:[labels]" by version number.
func allStages(t *testing.T, e *env) string {
	t.Helper()
	out, err := e.sm.ListSecretVersionIds(e.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("s"), IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, v := range out.Versions {
		n := strings.TrimLeft(aws.ToString(v.VersionId)[24:], "0")
		st := slices.Clone(v.VersionStages)
		slices.Sort(st)
		parts = append(parts, fmt.Sprintf("%s:%v", n, st))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func TestDeleteAndRestore(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	e := start(t, localsm.Options{Now: clk.Now})
	create := func(name string) {
		t.Helper()
		if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v")}); err != nil {
			t.Fatal(err)
		}
	}
	create("s")
	del := func(window *int64, force *bool) (*secretsmanager.DeleteSecretOutput, error) {
		return e.sm.DeleteSecret(e.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("s"), RecoveryWindowInDays: window, ForceDeleteWithoutRecovery: force})
	}
	for _, w := range []int64{0, 6, 31} {
		_, err := del(aws.Int64(w), nil)
		wantCode(t, fmt.Sprintf("window %d", w), err, "InvalidParameterException")
	}
	_, err := del(aws.Int64(7), aws.Bool(true))
	wantCode(t, "window and force", err, "InvalidParameterException")
	out, err := del(aws.Int64(7), aws.Bool(false))
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(7 * 24 * time.Hour); !aws.ToTime(out.DeletionDate).Equal(want) {
		t.Errorf("DeletionDate %v, want %v", out.DeletionDate, want)
	}
	_, err = del(nil, nil)
	wantCode(t, "delete twice", err, "InvalidRequestException")
	_, err = e.sm.GetSecretValue(e.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
	wantCode(t, "get deleted", err, "InvalidRequestException")
	_, err = e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("x")})
	wantCode(t, "put deleted", err, "InvalidRequestException")
	_, err = e.sm.UpdateSecretVersionStage(e.ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("s"), VersionStage: aws.String("X"), MoveToVersionId: aws.String(tok(1))})
	wantCode(t, "stage deleted", err, "InvalidRequestException")
	_, err = e.sm.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:f")})
	wantCode(t, "rotate deleted", err, "InvalidRequestException")
	d, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if err != nil || !aws.ToTime(d.DeletedDate).Equal(clk.Now()) {
		t.Fatalf("describe deleted: %v DeletedDate %v", err, d.DeletedDate)
	}
	if _, err := e.sm.RestoreSecret(e.ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.GetSecretValue(e.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")}); err != nil {
		t.Fatalf("get after restore: %v", err)
	}

	// Default window is 30 days; the secret disappears once the clock passes it.
	out, err = del(nil, nil)
	if err != nil || !aws.ToTime(out.DeletionDate).Equal(clk.Now().Add(30*24*time.Hour)) {
		t.Fatalf("default window: %v %v", err, out.DeletionDate)
	}
	clk.Add(30*24*time.Hour - time.Second)
	if _, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")}); err != nil {
		t.Fatalf("within the window: %v", err)
	}
	clk.Add(time.Second)
	_, err = e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	wantCode(t, "after the window", err, "ResourceNotFoundException")
	create("s") // the name is free again

	_, err = del(nil, aws.Bool(true))
	wantCode(t, "force", err, "ok")
	_, err = e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	wantCode(t, "after force", err, "ResourceNotFoundException")
	_, err = del(nil, nil)
	wantCode(t, "delete unknown", err, "ResourceNotFoundException")
}

func TestTagsAndVersionList(t *testing.T) {
	e := start(t, localsm.Options{})
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("one"),
		Tags: []smtypes.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("s"), Tags: []smtypes.Tag{{Key: aws.String("b"), Value: aws.String("20")}, {Key: aws.String("c"), Value: aws.String("3")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.UntagResource(e.ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("s"), TagKeys: []string{"a", "missing"}}); err != nil {
		t.Fatal(err)
	}
	d, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, tg := range d.Tags {
		tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
	}
	if got := strings.Join(tags, ","); got != "b=20,c=3" {
		t.Errorf("tags %s, want b=20,c=3", got)
	}
	_, err = e.sm.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("nope"), Tags: []smtypes.Tag{{Key: aws.String("x"), Value: aws.String("y")}}})
	wantCode(t, "tag unknown", err, "ResourceNotFoundException")
	_, err = e.sm.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("s"), Tags: []smtypes.Tag{{Key: aws.String(""), Value: aws.String("y")}}})
	wantCode(t, "empty tag key", err, "InvalidParameterException")

	for n := 2; n <= 5; n++ {
		if _, err := e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(n)), SecretString: aws.String(fmt.Sprint(n))}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(deprecated bool, max int32, next *string) *secretsmanager.ListSecretVersionIdsOutput {
		t.Helper()
		in := &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("s"), IncludeDeprecated: aws.Bool(deprecated), NextToken: next}
		if max > 0 {
			in.MaxResults = aws.Int32(max)
		}
		out, err := e.sm.ListSecretVersionIds(e.ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list(false, 0, nil).Versions; len(got) != 2 {
		t.Errorf("without deprecated: %d versions, want current and previous", len(got))
	}
	page := list(true, 3, nil)
	if len(page.Versions) != 3 || page.NextToken == nil {
		t.Fatalf("first page: %d versions, next %v", len(page.Versions), page.NextToken)
	}
	rest := list(true, 3, page.NextToken)
	if len(rest.Versions) != 2 || rest.NextToken != nil || aws.ToString(rest.Versions[1].VersionId) != tok(5) {
		t.Fatalf("second page: %+v", rest)
	}
	_, err = e.sm.ListSecretVersionIds(e.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("nope")})
	wantCode(t, "list unknown", err, "ResourceNotFoundException")
}

// TestProtocol checks the wire format the SDK does not show: headers, error bodies, numbers.
func TestProtocol(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 3, 1, 0, 0, 0, 250_000_000, time.UTC))
	e := start(t, localsm.Options{Now: clk.Now})
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("PLANTED-value-91c")}); err != nil {
		t.Fatal(err)
	}
	reqs := e.reqs.all()
	last := reqs[len(reqs)-1]
	if last.Method != http.MethodPost || last.Path != "/" || last.Header.Get("X-Amz-Target") != "secretsmanager.CreateSecret" ||
		last.Header.Get("Content-Type") != "application/x-amz-json-1.1" || !strings.HasPrefix(last.Header.Get("Authorization"), "AWS4-HMAC-SHA256") {
		t.Errorf("the SDK sent %+v", last)
	}

	raw := func(target, ct, auth, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader(body))
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("body %q is not JSON: %v", b, err)
		}
		return resp.StatusCode, resp.Header, m
	}
	const ct, auth = "application/x-amz-json-1.1", "AWS4-HMAC-SHA256 Credential=x"
	for _, tc := range []struct {
		name, target, ct, auth, body string
		status                       int
		typ                          string
	}{
		{"no Authorization", "secretsmanager.DescribeSecret", ct, "", `{"SecretId":"s"}`, 403, "MissingAuthenticationTokenException"},
		{"wrong content type", "secretsmanager.DescribeSecret", "application/json", auth, `{"SecretId":"s"}`, 400, "SerializationException"},
		{"unknown operation", "secretsmanager.GetRandomPassword", ct, auth, `{}`, 400, "UnknownOperationException"},
		{"other service", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories", ct, auth, `{}`, 400, "UnknownOperationException"},
		{"bad JSON", "secretsmanager.DescribeSecret", ct, auth, `{"SecretId":`, 400, "SerializationException"},
		{"not found", "secretsmanager.DescribeSecret", ct, auth, `{"SecretId":"nope"}`, 400, "ResourceNotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, m := raw(tc.target, tc.ct, tc.auth, tc.body)
			typ, _ := m["__type"].(string)
			if status != tc.status || !strings.HasSuffix(typ, tc.typ) || m["message"] == nil ||
				!strings.HasPrefix(h.Get("X-Amzn-Errortype"), tc.typ+":") || h.Get("X-Amzn-Requestid") == "" {
				t.Errorf("status %d headers %v body %v", status, h, m)
			}
		})
	}
	status, _, m := raw("secretsmanager.GetSecretValue", ct, auth, `{"SecretId":"s"}`)
	if status != 200 || m["CreatedDate"] != 1772323200.25 || m["SecretString"] != "PLANTED-value-91c" {
		t.Errorf("GetSecretValue: %d %v (CreatedDate must be epoch seconds)", status, m)
	}
}

// TestConcurrentWriters runs writers in parallel (go test -race finds unguarded state).
func TestConcurrentWriters(t *testing.T) {
	e := start(t, localsm.Options{})
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				if _, err := e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String(fmt.Sprint(i, j))}); err != nil {
					t.Error(err)
				}
				if _, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	d, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	current, previous := 0, 0
	for _, st := range d.VersionIdsToStages {
		if slices.Contains(st, "AWSCURRENT") {
			current++
		}
		if slices.Contains(st, "AWSPREVIOUS") {
			previous++
		}
	}
	if current != 1 || previous != 1 {
		t.Fatalf("after 40 concurrent puts: %d AWSCURRENT, %d AWSPREVIOUS", current, previous)
	}
	if n := len(e.srv.Calls()); n != 82 {
		t.Errorf("Calls recorded %d operations, want 82", n)
	}
}
