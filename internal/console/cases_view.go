package console

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// What the case pages show beside the engine's own fields: the deadline in working days with
// its colour spelled out (WCAG 1.4.1: colour is never the only signal), and display names of
// steps, actions and parties.

// deadline is a case's step deadline as the pages show it.
type deadline struct {
	Status workflow.Status
	Class  string    // badge class: ok | warn | bad ("" once closed)
	Label  i18n.Text // 正常 / 临期 / 超期, or the state when there is no colour
	Left   i18n.Text // 剩余 2 个工作日 / 今日到期 / 超期 3 个工作日 / 暂停计时 …
	Due    *time.Time
}

// statusClass maps a deadline colour to the stylesheet's badge classes.
func statusClass(s workflow.Status) string {
	switch s {
	case workflow.Green:
		return "ok"
	case workflow.Yellow:
		return "warn"
	case workflow.Red:
		return "bad"
	}
	return ""
}

// deadlineOf describes c's step deadline at now, counting on the working-day calendar the
// engine uses.
func deadlineOf(cal *calendar.Calendar, now time.Time, c workflow.Case) deadline {
	d := deadline{Status: c.Status, Class: statusClass(c.Status), Label: workflow.StatusNames[c.Status], Due: c.StepDueAt}
	switch c.State {
	case workflow.StateClosed:
		d.Class, d.Label = "", workflow.StateNames[workflow.StateClosed]
		if o, ok := workflow.OutcomeNames[c.Outcome]; ok {
			d.Left = o
		}
		return d
	case workflow.StateSuspended:
		// The clocks stand still while the applicant corrects (补正); what is left is kept.
		d.Left = i18n.T("暂停计时", "clock stopped")
		if c.StepTimeLeft != nil {
			days := workingDays(*c.StepTimeLeft)
			d.Left = i18n.T(fmt.Sprintf("暂停计时，剩余 %s 个工作日", days), fmt.Sprintf("clock stopped, %s working days left", days))
		}
		return d
	}
	if c.StepDueAt == nil {
		d.Left = i18n.T("无时限", "no time limit")
		return d
	}
	due := *c.StepDueAt
	if !now.Before(due) {
		if n := cal.WorkdaysBetween(due, now); n > 0 {
			d.Left = i18n.T(fmt.Sprintf("超期 %d 个工作日", n), fmt.Sprintf("%d working %s overdue", n, plural(n, "day", "days")))
		} else {
			at := due.In(calendar.Beijing).Format("15:04")
			d.Left = i18n.T("今日 "+at+" 已到期", "was due today at "+at)
		}
		return d
	}
	if n := cal.WorkdaysBetween(now, due); n > 0 {
		d.Left = i18n.T(fmt.Sprintf("剩余 %d 个工作日", n), fmt.Sprintf("%d working %s left", n, plural(n, "day", "days")))
	} else {
		at := due.In(calendar.Beijing).Format("15:04")
		d.Left = i18n.T("今日 "+at+" 到期", "due today at "+at)
	}
	return d
}

// workingDays writes a stopped clock's working time as days with one decimal (a working day
// is 24 hours of a working date, as the engine counts).
func workingDays(left time.Duration) string {
	days := math.Floor(left.Hours()/24*10) / 10
	return fmt.Sprintf("%.1f", days)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Well-known step names, for queue tabs of steps no case on the page names.
var stepNames = map[string]i18n.Text{
	workflow.StepPreReview: i18n.T("预审", "Pre-review"),
	workflow.StepAccept:    i18n.T("受理", "Acceptance"),
	workflow.StepReview:    i18n.T("审查", "Review"),
	workflow.StepDecide:    i18n.T("决定", "Decision"),
	workflow.StepDeliver:   i18n.T("送达", "Delivery"),
}

// stepOrder sorts step keys: the well-known ones in process order, others after, by key.
func stepOrder(keys []string) []string {
	rank := func(k string) int {
		switch k {
		case workflow.StepPreReview:
			return 0
		case workflow.StepAccept:
			return 1
		case workflow.StepReview:
			return 2
		case workflow.StepDecide:
			return 3
		case workflow.StepDeliver:
			return 4
		}
		return 5
	}
	out := slices.Clone(keys)
	slices.SortFunc(out, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	return out
}

// actionNames are the history's actions as officers read them.
var actionNames = map[workflow.Action]i18n.Text{
	workflow.ActionOpened:      i18n.T("提交申请", "submitted"),
	workflow.ActionClaimed:     i18n.T("认领", "claimed"),
	workflow.ActionReleased:    i18n.T("取消认领", "released"),
	workflow.ActionAdvanced:    i18n.T("审核通过，转下一环节", "approved, to the next step"),
	workflow.ActionSuspended:   i18n.T("一次性告知补正", "correction requested"),
	workflow.ActionResumed:     i18n.T("申请人已补正", "corrected by the applicant"),
	workflow.ActionTransferred: i18n.T("转办", "transferred"),
	workflow.ActionReturned:    i18n.T("退回上一环节", "returned to the previous step"),
	workflow.ActionWithdrawn:   i18n.T("申请人撤回", "withdrawn by the applicant"),
	workflow.ActionClosed:      i18n.T("办结", "closed"),
	workflow.ActionReminded:    i18n.T("临期提醒", "deadline reminder"),
	workflow.ActionEscalated:   i18n.T("超期督办", "escalated: overdue"),
}

// actionClass colours an action's badge in the timeline.
func actionClass(a workflow.Action, o workflow.Outcome) string {
	switch a {
	case workflow.ActionClosed:
		if o == workflow.OutcomeRejected {
			return "bad"
		}
		return "ok"
	case workflow.ActionAdvanced:
		return "ok"
	case workflow.ActionSuspended, workflow.ActionReturned, workflow.ActionReminded:
		return "warn"
	case workflow.ActionEscalated, workflow.ActionWithdrawn:
		return "bad"
	}
	return ""
}

// partyKinds name who a case serves.
var partyKinds = map[authz.Kind]i18n.Text{
	authz.Citizen:    i18n.T("个人", "citizen"),
	authz.Enterprise: i18n.T("企业", "enterprise"),
	authz.Staff:      i18n.T("工作人员", "staff"),
	authz.System:     i18n.T("系统", "system"),
}
