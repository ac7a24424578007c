package dockerhub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/totp"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// ModesDoc is where the README says which Docker Hub account can use which mode; errors that
// end in "use staged mode" point there.
const ModesDoc = "README.md#which-mode-works-for-whom"

// totpStep is RFC 6238's time step, the one Docker Hub's authenticator codes use.
const totpStep = 30 * time.Second

// refusal is what kind of "no" a session endpoint said.
type refusal int

const (
	refusedOther  refusal = iota
	refusedSSO            // the account's organization enforces single sign-on
	refusedLocked         // locked, suspended or throttled after failed attempts
	refusedPAT            // the session was started from a personal access token
	refusedOAT            // the session was started from an organization access token
)

var ssoRE = regexp.MustCompile(`\bsso\b|single sign[- ]on`)

// refusalOf reads Docker Hub's explanation. The Hub API reference documents one 401 body for
// every refusal ({"detail"} or {"message"}), so the kinds are told apart by its words; anything
// unrecognised is refusedOther.
func refusalOf(err error) refusal {
	var se *httpapi.StatusError
	if !errors.As(err, &se) {
		return refusedOther
	}
	m := strings.ToLower(se.Message)
	switch {
	case ssoRE.MatchString(m):
		return refusedSSO
	case strings.Contains(m, "locked") || strings.Contains(m, "suspended") || strings.Contains(m, "too many") || strings.Contains(m, "disabled"):
		return refusedLocked
	case strings.Contains(m, "personal access token"):
		return refusedPAT
	case strings.Contains(m, "organization access token"):
		return refusedOAT
	}
	return refusedOther
}

// Errors that say what to do. None quotes a value from the source secret.
func errSSO(err error) error {
	return fmt.Errorf("%w: the account's organization enforces single sign-on (SSO), so Docker Hub refuses its password, and a session started from a personal access token may not manage tokens: nothing can mint tokens for it; use staged mode (a source secret {\"mode\": \"staged\", ...} holding the token a person made; see %s)", err, ModesDoc)
}

func errLocked(err error) error {
	return fmt.Errorf("%w: Docker Hub refuses logins of this account for now (locked or throttled after failed attempts): check fields \"password\" and \"totpSecret\" of the source secret, unlock the account on hub.docker.com if needed, and let the next scheduled rotation retry rather than rotating in a loop", err)
}

func errRateLimited(err error) error {
	return fmt.Errorf("%w: Docker Hub is rate limiting this account's logins; the next rotation retries (check that nothing else logs in with this account in a loop)", err)
}

var (
	//lint:ignore ST1005 Docker Hub is a proper noun
	errWrongPassword = errors.New(`Docker Hub refused the source secret's username/password (HTTP 401): check fields "username" and "password" (the account password, not an access token)`)
	//lint:ignore ST1005 Docker Hub is a proper noun
	errNeedTOTP = errors.New(`Docker Hub account has two-factor authentication: add its base32 secret as field "totpSecret" to the source secret`)
)

// patSessionError explains a token endpoint's refusal of the session, or returns err unchanged.
func patSessionError(err error) error {
	if !httpapi.IsStatus(err, http.StatusForbidden) {
		return err
	}
	switch refusalOf(err) {
	case refusedPAT:
		return fmt.Errorf("%w: the source secret's \"password\" is a personal access token; Docker Hub lets only a password session manage tokens, so store the account password there — or, if the account's organization enforces SSO, use staged mode (see %s)", err, ModesDoc)
	case refusedOAT:
		return fmt.Errorf("%w: an organization access token cannot create access tokens; give the password of an owner of the organization, or use staged mode (see %s)", err, ModesDoc)
	}
	return err
}

// login starts a Hub API session. Without totpSecret it asks POST /v2/auth/token (the
// endpoint the Hub API reference recommends); with it, the deprecated /v2/users/login +
// /v2/users/2fa-login, still the only way to give a second factor. The session is reused within
// the process.
func (d *DockerHub) login(ctx context.Context) (string, error) {
	if d.session != "" {
		return d.session, nil
	}
	var tok string
	var err error
	if d.src.TOTPSecret != "" {
		tok, err = d.loginTOTP(ctx)
	} else {
		tok, err = d.loginToken(ctx)
	}
	if err != nil {
		return "", err
	}
	d.session = tok
	return tok, nil
}

// loginToken is POST /v2/auth/token {"identifier","secret"} -> {"access_token"}. It only
// creates a session, so 5xx answers and lost connections are retried (Repeatable).
func (d *DockerHub) loginToken(ctx context.Context) (string, error) {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_, err := d.api2.Do(ctx, "start a session (POST /v2/auth/token)", httpapi.Request{
		Method: http.MethodPost, URL: d.api + "/v2/auth/token", Repeatable: true,
		JSON: map[string]string{"identifier": d.src.Username, "secret": d.src.Password},
	}, &out)
	switch {
	case err == nil && out.AccessToken == "":
		//lint:ignore ST1005 Docker Hub is a proper noun
		return "", errors.New("Docker Hub: start a session: the answer carried no access_token")
	case err == nil:
		return out.AccessToken, nil
	case refusalOf(err) == refusedSSO:
		return "", errSSO(err)
	case refusalOf(err) == refusedLocked:
		return "", errLocked(err)
	case httpapi.IsStatus(err, http.StatusTooManyRequests):
		return "", errRateLimited(err)
	case httpapi.IsStatus(err, http.StatusUnauthorized, http.StatusForbidden):
		// /v2/auth/token documents one 401 for every refusal. The older login tells a 2FA
		// account (its 401 carries login_2fa_token) and an SSO refusal apart: ask it once.
		return d.diagnose(ctx)
	}
	return "", err
}

// diagnose asks /v2/users/login why the password was refused. A session it grants is used.
func (d *DockerHub) diagnose(ctx context.Context) (string, error) {
	tok, tfa, err := d.passwordLogin(ctx)
	switch {
	case err != nil:
		return "", err
	case tfa != "":
		return "", errNeedTOTP
	}
	return tok, nil
}

// passwordLogin is POST /v2/users/login. It returns a session, or the login_2fa_token of a
// 2FA account's challenge, or an error that says what to do.
func (d *DockerHub) passwordLogin(ctx context.Context) (session, challenge string, err error) {
	var out struct {
		Token string `json:"token"`
	}
	_, err = d.api2.Do(ctx, "log in (POST /v2/users/login)", httpapi.Request{
		Method: http.MethodPost, URL: d.api + "/v2/users/login", Repeatable: true,
		JSON: map[string]string{"username": d.src.Username, "password": d.src.Password},
	}, &out)
	var se *httpapi.StatusError
	switch {
	case err == nil && out.Token == "":
		//lint:ignore ST1005 Docker Hub is a proper noun
		return "", "", errors.New("Docker Hub: log in: the answer carried no session token")
	case err == nil:
		return out.Token, "", nil
	case refusalOf(err) == refusedSSO:
		return "", "", errSSO(err)
	case refusalOf(err) == refusedLocked:
		return "", "", errLocked(err)
	case httpapi.IsStatus(err, http.StatusTooManyRequests):
		return "", "", errRateLimited(err)
	case errors.As(err, &se) && se.StatusCode == http.StatusUnauthorized:
		// A 2FA account answers 401 with a second-factor token in the body; a wrong password
		// answers 401 without one.
		var body struct {
			Login2FAToken string `json:"login_2fa_token"`
		}
		_ = se.DecodeBody(&body)
		if body.Login2FAToken == "" {
			return "", "", errWrongPassword
		}
		return "", body.Login2FAToken, nil
	}
	return "", "", err
}

// loginTOTP logs in with the password and an RFC 6238 code. Docker Hub, like any RFC 6238
// verifier, accepts a code once: a login that met another one within the same 30 s step (a
// cold createSecret and finishSecret, say) is refused although nothing is misconfigured. So a
// refused code is retried once with the next step's code, when that fits before the deadline,
// and only a refusal of that one too blames "totpSecret".
func (d *DockerHub) loginTOTP(ctx context.Context) (string, error) {
	var usedStep int64 = -1
	for attempt := 1; ; attempt++ {
		tok, challenge, err := d.passwordLogin(ctx)
		if err != nil {
			return "", err
		}
		if challenge == "" {
			return tok, nil // the account has no second factor after all
		}
		now := d.opts.Clock()()
		step := now.Unix() / int64(totpStep/time.Second)
		if step <= usedStep {
			// The clock has not reached the next step yet (a fake or coarse clock): the code
			// would be the refused one again.
			step = usedStep + 1
			now = time.Unix(step*int64(totpStep/time.Second), 0)
		}
		code, cerr := totp.Code(d.src.TOTPSecret, now)
		if cerr != nil {
			return "", fmt.Errorf("docker-hub source secret: field \"totpSecret\": %v", cerr)
		}
		usedStep = step
		var out struct {
			Token string `json:"token"`
		}
		_, err = d.api2.Do(ctx, "log in with the two-factor code (POST /v2/users/2fa-login)", httpapi.Request{
			Method: http.MethodPost, URL: d.api + "/v2/users/2fa-login", Repeatable: true,
			JSON: map[string]string{"login_2fa_token": challenge, "code": code},
		}, &out)
		switch {
		case err == nil && out.Token == "":
			//lint:ignore ST1005 Docker Hub is a proper noun
			return "", errors.New("Docker Hub: log in with the two-factor code: the answer carried no session token")
		case err == nil:
			return out.Token, nil
		case httpapi.IsStatus(err, http.StatusTooManyRequests):
			return "", errRateLimited(err)
		case refusalOf(err) == refusedLocked:
			return "", errLocked(err)
		case !httpapi.IsStatus(err, http.StatusUnauthorized):
			return "", err
		case attempt > 1:
			//lint:ignore ST1005 Docker Hub is a proper noun
			return "", fmt.Errorf("Docker Hub refused the two-factor codes of two consecutive 30-second steps: check field \"totpSecret\" (the base32 secret of the account's authenticator) and the Lambda's clock: %w", err)
		}
		// Wait for the next step to begin (a little after, for clock skew), within the deadline.
		next := time.Unix((step+1)*int64(totpStep/time.Second), 0)
		wait := next.Sub(d.opts.Clock()()) + time.Second
		if wait <= 0 {
			wait = time.Second
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+5*time.Second {
			//lint:ignore ST1005 Docker Hub is a proper noun
			return "", fmt.Errorf("Docker Hub refused the two-factor code: a code is accepted once, and another login may have used this 30-second step's code; the next step did not fit before the deadline, so the next rotation retries (if it keeps failing, check field \"totpSecret\"): %w", err)
		}
		d.opts.Log().InfoContext(ctx, "Docker Hub refused the two-factor code; waiting for the next 30-second step (a code is accepted once)", "wait", wait.Round(time.Millisecond).String())
		if err := d.sleep(ctx, wait); err != nil {
			return "", fmt.Errorf("waiting for the next two-factor code: %w", err)
		}
	}
}

// sleep waits d with the injected Sleep (the Caller's, which tests replace), or a timer.
func (d *DockerHub) sleep(ctx context.Context, dur time.Duration) error {
	if d.api2.Sleep != nil {
		return d.api2.Sleep(ctx, dur)
	}
	return kit.Sleep(ctx, dur)
}
