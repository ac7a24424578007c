package acr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// TokenID is the parsed ARM resource id of an ACR token:
// /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{reg}/tokens/{name}.
type TokenID struct {
	Subscription  string
	ResourceGroup string
	Registry      string
	// Name is the token's name, which is also its registry username.
	Name string
}

var (
	guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// Resource group names: 1-90 letters, digits, underscores, hyphens, periods and
	// parentheses, not ending in a period (Azure naming rules).
	resourceGroupRE = regexp.MustCompile(`^[\p{L}\p{N}_().-]{0,89}[\p{L}\p{N}_()-]$`)
	// Registry names: 5-50 letters and digits.
	registryRE = regexp.MustCompile(`^[a-zA-Z0-9]{5,50}$`)
	// Token names: letters, digits, hyphens and underscores, up to 50.
	tokenNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,49}$`)
)

const tokenIDShape = "/subscriptions/{subscription id}/resourceGroups/{resource group}/providers/Microsoft.ContainerRegistry/registries/{registry}/tokens/{token}"

// ParseTokenID reads an ACR token's ARM resource id. ARM keywords match without regard to case,
// as Azure does. Errors say which part is wrong; an id is not a secret, but the errors still
// quote only the part at fault.
func ParseTokenID(raw string) (TokenID, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return TokenID{}, errors.New("is empty; give the token's resource id, " + tokenIDShape)
	}
	if !strings.HasPrefix(s, "/") {
		return TokenID{}, errors.New("must start with /subscriptions/: give the token's resource id, " + tokenIDShape + " (az acr token show --query id)")
	}
	seg := strings.Split(strings.TrimSuffix(s[1:], "/"), "/")
	keywords := map[int]string{0: "subscriptions", 2: "resourceGroups", 4: "providers", 5: "Microsoft.ContainerRegistry", 6: "registries", 8: "tokens"}
	if len(seg) != 10 {
		return TokenID{}, fmt.Errorf("has %d path segments, want 10: %s", len(seg), tokenIDShape)
	}
	for i, kw := range keywords {
		if !strings.EqualFold(seg[i], kw) {
			return TokenID{}, fmt.Errorf("segment %d is %q where %q belongs: %s", i+1, kit.Truncate(seg[i], 40), kw, tokenIDShape)
		}
	}
	id := TokenID{Subscription: seg[1], ResourceGroup: seg[3], Registry: seg[7], Name: seg[9]}
	switch {
	case !guidRE.MatchString(id.Subscription):
		return TokenID{}, fmt.Errorf("subscription %q is not a subscription id (a GUID)", kit.Truncate(id.Subscription, 40))
	case !resourceGroupRE.MatchString(id.ResourceGroup):
		return TokenID{}, fmt.Errorf("resource group %q is not a valid resource group name", kit.Truncate(id.ResourceGroup, 40))
	case !registryRE.MatchString(id.Registry):
		return TokenID{}, fmt.Errorf("registry %q is not a valid registry name (5-50 letters and digits)", kit.Truncate(id.Registry, 60))
	case !tokenNameRE.MatchString(id.Name):
		return TokenID{}, fmt.Errorf("token name %q is not a valid ACR token name (letters, digits, - and _, up to 50)", kit.Truncate(id.Name, 60))
	}
	return id, nil
}

// String renders the id in Azure's canonical spelling.
func (t TokenID) String() string {
	return "/subscriptions/" + t.Subscription + "/resourceGroups/" + t.ResourceGroup +
		"/providers/Microsoft.ContainerRegistry/registries/" + t.Registry + "/tokens/" + t.Name
}

// registryPath is the ARM path of the registry the token belongs to.
func (t TokenID) registryPath() string {
	return "/subscriptions/" + t.Subscription + "/resourceGroups/" + t.ResourceGroup +
		"/providers/Microsoft.ContainerRegistry/registries/" + t.Registry
}
