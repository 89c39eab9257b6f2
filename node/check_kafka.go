package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sethvargo/go-retry"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/iqengine/iqengine/config"
)

// needs are the operations a node needs on its topics (metadata, offsets,
// fetches) and on its group (finding its coordinator, joining it).
var needs = []kmsg.ACLOperation{kmsg.ACLOperationDescribe, kmsg.ACLOperationRead}

// checkKafka checks the brokers, the topics and the group, with requests
// that read metadata only: nothing is created, consumed or joined.
func checkKafka(ctx context.Context, cfg config.Config, report reportFunc) {
	// DescribeGroups v6 answers a group that does not exist yet with an
	// error and no permissions; v5 describes it as Dead, with them.
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(int16(kmsg.DescribeGroups), 5)
	_, cl, err := connect(ctx, cfg.Kafka, kgo.MaxVersions(versions))
	if err != nil {
		report("brokers", "", err) // it names the brokers
		return
	}
	defer cl.Close()
	auth := "no SASL"
	if s := cfg.Kafka.SASL; s.Mechanism != "" {
		auth = fmt.Sprintf("%s as %q accepted", s.Mechanism, s.Username)
	}
	report("brokers", strings.Join(cfg.Kafka.Brokers, ",")+" answer; "+auth, nil)

	ctx, cancel := context.WithTimeout(ctx, cfg.Kafka.StartupTimeout.D())
	defer cancel()
	adm := kadm.NewClient(cl)
	checkTopics(ctx, cfg, cl, adm, report)
	checkGroup(ctx, cfg.ApplicationID, adm, report)
}

// checkTopics reports each store topic's existence, partitions,
// cleanup.policy and the principal's permissions on it.
func checkTopics(ctx context.Context, cfg config.Config, cl *kgo.Client, adm *kadm.Client, report reportFunc) {
	topics, stores := storeTopics(cfg)
	req := kmsg.NewPtrMetadataRequest() // AllowAutoTopicCreation false: a check creates nothing
	req.IncludeTopicAuthorizedOperations = true
	for _, t := range topics {
		req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(t)})
	}
	resp, err := req.RequestWith(ctx, cl)
	md := map[string]kmsg.MetadataResponseTopic{}
	var existing []string
	if err == nil {
		for _, t := range resp.Topics {
			if t.Topic != nil && t.ErrorCode == 0 {
				existing = append(existing, *t.Topic)
			}
			if t.Topic != nil {
				md[*t.Topic] = t
			}
		}
	}
	policies := cleanupPolicies(ctx, adm, existing)
	for _, t := range topics {
		what := fmt.Sprintf("topic %s (%s)", t, strings.Join(stores[t], ", "))
		mt, ok := md[t]
		terr := kerr.ErrorForCode(mt.ErrorCode)
		switch {
		case err != nil:
			report(what, "", fmt.Errorf("topic metadata: %w", err))
		case !ok || errors.Is(terr, kerr.UnknownTopicOrPartition):
			report(what, "", fmt.Errorf("topic %q does not exist (create it, or fix the store's topic)", t))
		case errors.Is(terr, kerr.TopicAuthorizationFailed):
			report(what, "", fmt.Errorf("not authorized to describe topic %q (a node needs %s on its topics)", t, opNames(needs)))
		case terr != nil:
			report(what, "", fmt.Errorf("topic %q: %w", t, terr))
		default:
			found := fmt.Sprintf("%d partitions, cleanup.policy %s", len(mt.Partitions), policies[t])
			if lacks := missingOps(mt.AuthorizedOperations); len(lacks) > 0 {
				report(what, "", fmt.Errorf("%s; not authorized to %s it (a node needs %s on its topics)", found, opNames(lacks), opNames(needs)))
			} else {
				report(what, found+"; "+permitted(mt.AuthorizedOperations), nil)
			}
		}
	}
}

// cleanupPolicies reads the topics' cleanup.policy, or says why it could
// not: the node then treats the topic as compacted (engine.checkRetention).
func cleanupPolicies(ctx context.Context, adm *kadm.Client, topics []string) map[string]string {
	out := map[string]string{}
	if len(topics) == 0 {
		return out
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	for _, t := range topics {
		out[t] = "unknown"
		if err != nil {
			out[t] = fmt.Sprintf("unreadable (%v: keys will not expire)", err)
		}
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			out[rc.Name] = fmt.Sprintf("unreadable (%v: keys will not expire)", rc.Err)
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				out[rc.Name] = *c.Value
			}
		}
	}
	return out
}

// checkGroup describes the group (a request to its coordinator, which
// neither joins nor creates it) and checks the principal may join it.
func checkGroup(ctx context.Context, group string, adm *kadm.Client, report reportFunc) {
	what := "group " + group
	var described kadm.DescribedGroups
	var last error
	err := retry.Do(ctx, retry.NewConstant(200*time.Millisecond), func(ctx context.Context) error {
		described, last = adm.DescribeGroups(ctx, group)
		if kerr.IsRetriable(last) {
			// No coordinator yet: a new cluster creates its offsets
			// topic on the first group request, or one is moving.
			return retry.RetryableError(last)
		}
		return last
	})
	if err != nil && last != nil {
		err = last // the broker's answer says more than the deadline
	}
	if err != nil {
		report(what, "", fmt.Errorf("describing group %q: %w (a node needs %s on its group)", group, err, opNames(needs)))
		return
	}
	g := described[group]
	var state string
	switch {
	case errors.Is(g.Err, kerr.GroupIDNotFound) || g.State == "Dead":
		state = "does not exist yet (no node has joined)"
	case g.Err != nil:
		report(what, "", fmt.Errorf("describing group %q: %w", group, g.Err))
		return
	default:
		state = fmt.Sprintf("%s with %s", g.State, plural(len(g.Members), "member"))
	}
	var bits int32
	if len(g.AuthorizedOperations) == 0 {
		bits = math.MinInt32 // left out by the broker
	}
	for _, op := range g.AuthorizedOperations {
		bits |= 1 << op
	}
	if lacks := missingOps(bits); len(lacks) > 0 {
		report(what, "", fmt.Errorf("%s; not authorized to %s it (a node needs %s on its group)", state, opNames(lacks), opNames(needs)))
		return
	}
	report(what, state+"; "+permitted(bits)+"; not joined by this check", nil)
}

// missingOps is what of needs a KIP-430 authorized-operations bitfield
// lacks; nothing when the broker left the field out (it then said nothing
// about permissions).
func missingOps(bits int32) []kmsg.ACLOperation {
	if bits == math.MinInt32 {
		return nil
	}
	var out []kmsg.ACLOperation
	for _, op := range needs {
		if bits&(1<<op) == 0 {
			out = append(out, op)
		}
	}
	return out
}

// permitted says what a check with no missing operations established.
func permitted(bits int32) string {
	if bits == math.MinInt32 {
		return "the broker does not report permissions"
	}
	return "may " + strings.ToLower(opNames(needs))
}

func opNames(ops []kmsg.ACLOperation) string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.String()
	}
	return strings.Join(names, " and ")
}
