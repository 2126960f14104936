package notify

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/workflow"
)

// Application is what OnCaseEvent needs to know about the application behind a case.
type Application struct {
	ID         string
	Number     string // 受理编号
	ItemName   string
	ItemNameEn string
	Applicant  authz.Subject // who to tell (Kind and ID)
	Phone      string        // their mobile for the SMS, "" for none
}

// Definitions reads case definitions, for step names (workflow.Service satisfies it).
type Definitions interface {
	GetDefinition(ctx context.Context, key string, version int) (workflow.Definition, error)
}

// CaseConsumer is the durable consumer of OnCaseEvent, and its name in processed_events.
// One for the whole cluster: the effect is in the shared database, so each event must be
// handled once, by whichever node gets it.
const CaseConsumer = "notify-applications"

// CaseSubjects is the filter subject of that consumer.
const CaseSubjects = workflow.SubjectAll

// ApplicationRef starts the workflow ref of a service application's case.
const ApplicationRef = "application:"

// ApplicationLink is the applicant's page of an application.
func ApplicationLink(id string) string { return "/account/applications/" + id }

// OnCaseEvent turns a case event of a service application into a message to its applicant:
// submitted, moved to the next step, correction requested (with what to correct), correction
// received, transferred, withdrawn, completed or refused. Claims, releases, returns and the
// officers' reminders and escalations are the department's own business and tell nobody.
func (s *Service) OnCaseEvent(ctx context.Context, ev bus.Event) error {
	action, ok := strings.CutPrefix(ev.Subject, workflow.SubjectPrefix)
	if !ok {
		return nil
	}
	var p workflow.EventPayload
	if err := ev.Decode(&p); err != nil {
		return err
	}
	appID, ok := strings.CutPrefix(p.Ref, ApplicationRef)
	if !ok || appID == "" || !notified(workflow.Action(action), p) {
		return nil
	}
	if s.opts.Application == nil {
		return fmt.Errorf("notify: no application lookup configured")
	}
	app, err := s.opts.Application(ctx, appID)
	if err != nil {
		if e, ok := i18n.As(err); ok && e.HTTPStatus() == 404 {
			return nil // nothing to tell anyone about; redelivery would not help
		}
		return fmt.Errorf("notify: application %s: %w", appID, err)
	}
	step := p.Step
	if s.opts.Definitions != nil {
		if def, err := s.opts.Definitions.GetDefinition(ctx, p.Definition, p.DefinitionVersion); err == nil {
			for _, st := range def.Steps {
				if st.Key == p.Step {
					step = st.Name
				}
			}
		}
	}
	if app.Applicant.Kind == "" || app.Applicant.ID == "" {
		app.Applicant = authz.Subject{Kind: p.ApplicantKind, ID: p.ApplicantID}
	}
	if _, err := ids.ValidateMobile(app.Phone); err != nil {
		app.Phone = "" // no SMS rather than a message that can never be written
	}
	m := caseMessage(workflow.Action(action), p, app, step)
	return bus.HandleOnce(ctx, s.d, CaseConsumer, ev, func(tx *db.Tx) error {
		_, err := s.Send(ctx, tx, m)
		return err
	})
}

// notified reports whether a case event is news to the applicant.
func notified(a workflow.Action, p workflow.EventPayload) bool {
	switch a {
	case workflow.ActionOpened, workflow.ActionAdvanced, workflow.ActionSuspended, workflow.ActionResumed,
		workflow.ActionTransferred, workflow.ActionWithdrawn:
		return true
	case workflow.ActionClosed:
		return p.Outcome == workflow.OutcomeApproved || p.Outcome == workflow.OutcomeRejected
	}
	return false
}

// caseMessage words the message of one case event.
func caseMessage(a workflow.Action, p workflow.EventPayload, app Application, step string) Message {
	item := clip(app.ItemName, 100)
	itemEn := clip(app.ItemNameEn, 100)
	step = clip(step, 100)
	comment := clip(p.Comment, 800)
	items := clip(strings.Join(p.Items, "；"), 500)
	if itemEn == "" {
		itemEn = item
	}
	zhRef := fmt.Sprintf("您申请的“%s”（受理编号 %s）", item, app.Number)
	enRef := fmt.Sprintf("Your application for %s (number %s)", itemEn, app.Number)
	var title, body i18n.Text
	var sms string
	switch a {
	case workflow.ActionOpened:
		title = i18n.T("申请已提交："+item, "Application submitted: "+itemEn)
		body = i18n.T(zhRef+"已提交，请留意办理进度。", enRef+" was submitted. We will tell you how it goes.")
		sms = "已提交"
	case workflow.ActionAdvanced:
		title = i18n.T("办理进度："+item, "Progress: "+itemEn)
		body = i18n.T(fmt.Sprintf("%s已进入“%s”环节。", zhRef, step), fmt.Sprintf("%s has moved on to the step %q.", enRef, step))
		sms = fmt.Sprintf("已进入“%s”环节", step)
	case workflow.ActionSuspended:
		title = i18n.T("请补正材料："+item, "Correction needed: "+itemEn)
		zh := zhRef + "需要补正：" + comment
		en := enRef + " needs a correction: " + comment
		if items != "" {
			zh += "（补正事项：" + items + "）"
			en += " (to correct: " + items + ")"
		}
		body = i18n.T(zh+"。补正期间办理时限暂停，请尽快登录补正。", en+". The time limit stops until you answer; please sign in and answer soon.")
		sms = "需要补正材料"
	case workflow.ActionResumed:
		title = i18n.T("已收到补正："+item, "Correction received: "+itemEn)
		body = i18n.T(zhRef+"的补正已收到，继续办理。", enRef+": your correction was received and handling continues.")
		sms = "的补正已收到"
	case workflow.ActionTransferred:
		title = i18n.T("申请已转办："+item, "Application transferred: "+itemEn)
		body = i18n.T(zhRef+"已转交有关部门继续办理。", enRef+" was passed to another department, which continues handling it.")
		sms = "已转交有关部门办理"
	case workflow.ActionWithdrawn:
		title = i18n.T("申请已撤回："+item, "Application withdrawn: "+itemEn)
		body = i18n.T(zhRef+"已撤回。", enRef+" was withdrawn.")
		sms = "已撤回"
	case workflow.ActionClosed:
		if p.Outcome == workflow.OutcomeApproved {
			title = i18n.T("申请已办结："+item, "Application completed: "+itemEn)
			body = i18n.T(zhRef+"已办结，准予办理。", enRef+" is completed and approved.")
			sms = "已办结"
		} else {
			title = i18n.T("申请不予许可："+item, "Application not approved: "+itemEn)
			body = i18n.T(zhRef+"不予许可。理由："+comment, enRef+" was not approved. Reasons: "+comment)
			sms = "不予许可"
		}
	}
	return Message{Recipient: app.Applicant, Title: title, Body: body, Link: ApplicationLink(app.ID), SMSPhone: app.Phone,
		SMSText: fmt.Sprintf("您申请的“%s”（受理编号%s）%s，详情请登录山西政务服务网查看。", item, app.Number, sms)}
}

// clip shortens s to at most n characters, so that whatever an officer wrote, the message
// fits (a message that cannot be written would be redelivered for ever).
func clip(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
