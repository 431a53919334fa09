# 页面框架、通用词语和状态。

nav-label = 主导航
nav-your-work = 我的工作
nav-batches = 批次
nav-products = 产品
nav-qualifications = 人员资格
nav-instruments = 仪器
nav-materials = 物料
nav-review-queue = 待审核
nav-audit-trail = 审计追踪
nav-users = 用户
nav-api-docs = API 文档
nav-signed-in-as = 已登录为 { $username }：修改密码
nav-language = 语言
nav-language-switch = 切换
nav-sign-out = 退出

password-temporary-before = 您的密码由管理员设置。您可以查阅记录，但在
password-temporary-link = 设置您自己的密码
password-temporary-after = 之前不能进行任何签名。

zone-yours = 您的时间，{ $zone }
page-of = 第 { $page } 页，共 { $total } 页
none = 无

error-title-not-found = 未找到
error-title-forbidden = 不允许
error-title-conflict = 当前无法执行
error-title-too-large = 内容过大
error-title-bad-request = 无法读取
error-title-not-saved = 未保存
error-title-unavailable = 暂时不可用
error-title-other = 已拒绝
error-choose-password = 设置您自己的密码
error-back-to-work = 返回我的工作
error-the-batches = 批次列表

refused-no-such-page = 没有该页面或记录。请检查地址，或从批次列表重新开始。
refused-too-large = 提交的内容超过 1 MiB，因此未保存任何内容。请缩短文本后重新提交。
refused-method = 该页面不能这样使用。请从批次列表重新开始。
refused-unreadable = 地址或表单无法读取，因此未保存任何内容。
refused-unreadable-because = 地址或表单无法读取，因此未保存任何内容（{ $detail }）。
refusal-nothing-saved = 未保存任何内容。
refusal-nothing-searched = 未执行查询。
refusal-correct = 请更正：
refusal-correct-below = 请更正下方标出的内容。

signing-you-state = 签名即表示您声明：“{ $statement }”
signing-you-state-chosen = 签名即表示您声明上方所选的内容。

outcome-pass = 合格
outcome-fail = 不合格
result-recorded = 结果已记录：
result-recorded-oos = 。已启动超标（OOS）调查并通知质量保证部门。

# 状态，按其存储代码（徽标的 class 仍为代码）。
status-quarantine = 待检（隔离）
status-conditionally-released = 有条件放行
status-released = 已放行
status-rejected = 已拒绝
status-recalled = 已召回
status-open = 进行中
status-closed = 已关闭
status-recorded = 已记录
status-reviewed = 已审核
status-review-rejected = 审核不通过
status-superseded = 已被替代
status-invalidated = 已判定无效
status-draft = 草稿
status-effective = 生效
status-in-service = 使用中
status-calibration-due = 待校准
status-out-of-service = 停用
status-failed-calibration = 校准不合格

# 签名含义：签名时显示并记录的声明。
statement-reviewed = 我已审核此结果并予以接受
statement-review-rejected = 我已审核此结果并予以拒绝
statement-spec-approved = 我批准此质量标准投入使用
statement-released = 我批准此批次放行
statement-conditionally-released = 我批准此批次在全部结果出具前有条件放行
statement-rejected = 我拒绝放行此批次
statement-recalled = 我召回此批次
statement-deviation-closed = 我依据所给结论关闭此偏差
statement-qualification-granted = 我确认此人员已经培训，具备执行此检测项目的资格，有效期至所给日期
statement-qualification-revoked = 我撤销此人员执行此检测项目的资格
statement-instrument-returned = 我确认此仪器适合使用并恢复其使用
statement-material-released = 我放行此物料批次供使用
statement-material-rejected = 我拒收此物料批次
statement-correction-opened = 我就此已决批次的该结果开启受控更正，理由如所述
blocker-correction-failed = 放行后更正“{ $title }”认定此批次不符合质量标准
statement-audit-trail-reviewed = 我已审核此批次审计追踪中截至所示条目的每一项异常
status-invalid-test = 检测无效
status-confirmed-oos = 确认超标（OOS）

# 放行障碍，按代码。
blocker-missing-result = { $test }（{ $name }）没有有效结果
blocker-result-failed = { $test } 的结果超出质量标准
blocker-result-not-reviewed = { $test } 的结果待第二人审核
blocker-open-deviation = 偏差“{ $title }”（{ $id }）尚未关闭
blocker-confirmed-oos = 偏差“{ $title }”已确认超标（OOS）：此批次只能拒绝放行
blocker-in-transit = 批次已发运但未记录送达
blocker-expired = 批次已于 { $at } 过期
blocker-parent-not-released = 亲代批次 { $number } { $status ->
        [quarantine] 处于待检（隔离）状态
        [conditionally_released] 为有条件放行
        [rejected] 已被拒绝
        [recalled] 已被召回
       *[other] 的状态为 { $status }
    }，未放行
blocker-audit-trail-not-reviewed = 此产品要求对批次的审计追踪进行签名审核，但尚无审核
blocker-audit-trail-stale = 批次审计追踪的第 { $seq } 条记录是在上次审核之后写入的例外：请重新审核
