import Hummingbird
import KlingUpstream

/// `POST /api/v1/upstream/callbacks/{taskId}?token=...`: where providers call back about tasks KlingKit forwarded.
/// The token is signed for the one task; a good one wakes the task's follower (which then asks the provider), anything
/// else gets the same 403. Bodies are read (up to 1 MiB) and dropped.
struct UpstreamCallbackRoutes {
    let callbacks: UpstreamCallbacks

    func register(on router: Router<KlingRequestContext>) {
        router.post("api/v1/upstream/callbacks/:taskId") { request, context in
            _ = try? await request.body.collect(upTo: 1 << 20)
            guard let taskID = context.parameters.get("taskId"), let token = request.uri.queryParameters["token"].map(String.init),
                callbacks.verify(taskID: taskID, token: token)
            else {
                return JSONResponse.make(status: 403, body: ["code": "403", "msg": "invalid callback token"])
            }
            callbacks.wake(taskID: taskID)
            return JSONResponse.make(status: 200, body: ["code": "200", "msg": "ok"])
        }
    }
}
