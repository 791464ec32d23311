import Hummingbird
import KlingCore

/// KlingKit extension: `GET /api/v1/jobs/list?pageNum=1&pageSize=20`, the caller's tasks of every dialect, newest
/// first, each as the recordInfo `data` object (state, cost, engine, result links).
extension MarketRoutes {
    /// One page of the list.
    struct TaskPage: Encodable, Sendable {
        var pageNum: Int
        var pageSize: Int
        var hasMore: Bool
        var tasks: [MarketTaskDetails]
    }

    static let defaultPageSize = 20
    static let maxPageSize = 100

    func list(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let query = request.uri.queryParameters
        let page = query["pageNum"].map { Int(String($0)) } ?? 1
        let size = query["pageSize"].map { Int(String($0)) } ?? Self.defaultPageSize
        guard let page, (1...1000).contains(page) else { throw APIError.validation("pageNum: must be a whole number from 1 to 1000") }
        guard let size, (1...Self.maxPageSize).contains(size) else {
            throw APIError.validation("pageSize: must be a whole number from 1 to \(Self.maxPageSize)")
        }
        let found = try await tasks.list(account: account, limit: size, after: nil, ascending: false, offset: (page - 1) * size)
        let body = TaskPage(pageNum: page, pageSize: size, hasMore: found.hasMore, tasks: found.tasks.map { MarketTaskDetails($0, links: links) })
        return JSONResponse.make(status: 200, body: MarketDialect.Envelope(code: 200, msg: "success", data: body))
    }
}
