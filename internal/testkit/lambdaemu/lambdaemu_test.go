package lambdaemu_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/lambdaemu"
)

// TestGetFunctionThroughTheSDK: the real SDK client finds a function by name, ARN and partial
// ARN, and gets the typed ResourceNotFoundException for one that is gone or another qualifier.
func TestGetFunctionThroughTheSDK(t *testing.T) {
	s := lambdaemu.New("us-east-1", "123456789012", "ptc-rotator", "other")
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	c := lambda.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")},
		func(o *lambda.Options) { o.BaseEndpoint = aws.String(hs.URL) })
	ctx := context.Background()
	for _, id := range []string{"ptc-rotator", "arn:aws:lambda:us-east-1:123456789012:function:ptc-rotator", "123456789012:function:ptc-rotator", "ptc-rotator:$LATEST"} {
		out, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(id)})
		if err != nil {
			t.Errorf("GetFunction %s: %v", id, err)
			continue
		}
		if got := aws.ToString(out.Configuration.FunctionArn); got != "arn:aws:lambda:us-east-1:123456789012:function:ptc-rotator" {
			t.Errorf("GetFunction %s: FunctionArn %s", id, got)
		}
	}
	s.Delete("ptc-rotator")
	for _, id := range []string{"ptc-rotator", "other:prod"} {
		_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(id)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("GetFunction %s: %v, want ResourceNotFoundException", id, err)
		}
	}
	_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("arn:aws:lambda:eu-west-1:123456789012:function:other")})
	var bad *types.InvalidParameterValueException
	if !errors.As(err, &bad) {
		t.Errorf("a function of another Region: %v, want InvalidParameterValueException", err)
	}
}
