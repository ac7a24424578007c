package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// undo records what a Create made, to remove it in reverse order if a later step fails.
type undo struct {
	log   *slog.Logger
	steps []undoStep
}

type undoStep struct {
	what string
	fn   func(context.Context) error
}

func (u *undo) add(what string, fn func(context.Context) error) {
	u.steps = append(u.steps, undoStep{what, fn})
}

// run undoes everything, even when the request's context is already cancelled (the deadline
// guard fired): leaving a half-made set behind is worse than a few seconds more.
func (u *undo) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var failed []string
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if err := s.fn(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", s.what, err))
			u.log.Error("undo failed", "what", s.what, "error", err.Error())
			continue
		}
		u.log.Info("undone", "what", s.what)
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; ") + " — remove these by hand")
	}
	return nil
}
