// The Membership contract against the kubernetes backend. NO KUBERNETES CLUSTER IS INVOLVED:
// the members list and watch a fake API server (test/helpers/fake-kube-api.ts) that speaks the
// real list/watch protocol for EndpointSlices. The fixture plays the kubelet and the
// EndpointSlice controller for one Service: a member's pod endpoint turns ready just before its
// first join (its readiness probe passed) and goes when it leaves; a closed member's endpoint
// stays (a crash the kubelet has not seen yet). How members go without leaving (unready,
// deleted, terminating) is in test/integration/kubernetes-membership.test.ts.
import { silentLogger } from "../../services/shared/log.js";
import { KubernetesMembership } from "../../services/shared/membership/kubernetes-membership.js";
import type { Membership } from "../../services/shared/membership/membership.js";
import { FakeKubeApi } from "../helpers/fake-kube-api.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { membershipContract } from "./membership.contract.js";

const SERVICE = "megaphone-session";

if (onlyImpl("kubernetes")) {
  let api: FakeKubeApi;
  let namespaces = 0;
  before(async () => (api = await FakeKubeApi.start()));
  after(async () => api?.stop());

  membershipContract(
    "kubernetes",
    async () => {
      // Its own namespace per test: no test sees another's slices.
      const namespace = `contract-${++namespaces}`;
      const ready = new Set<string>();
      const publish = () =>
        api.putSlice(
          namespace,
          `${SERVICE}-abcde`,
          SERVICE,
          [...ready].map((pod) => ({ pod, ready: true })),
        );
      return {
        member(): Membership {
          const inner = new KubernetesMembership(
            { namespace, serviceName: SERVICE, kubeConfig: api.kubeConfig() },
            silentLogger,
          );
          // One pod per instance, named by its first join: a second join cannot rename it.
          let pod: string | undefined;
          return {
            async join(memberId) {
              if (pod === undefined && memberId !== "") {
                pod = memberId;
                ready.add(pod);
                publish();
              }
              await inner.join(memberId);
            },
            members: () => inner.members(),
            onChange: (listener) => inner.onChange(listener),
            async leave() {
              await inner.leave();
              if (pod !== undefined && ready.delete(pod)) publish();
            },
            close: () => inner.close(),
          };
        },
        cleanup: async () => {},
      };
    },
    { expires: false },
  );
}
