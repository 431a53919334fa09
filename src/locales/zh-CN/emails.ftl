# 电子邮件。主题前加 "[cellqc] "；正文以换行结束。

email-oos-subject = 批次 { $batch } 出现超标（OOS）：{ $test } 不合格
email-late-oos-subject = 紧急：{ $status }批次 { $batch } 出现迟发超标（OOS）：{ $test } 不合格
email-oos-body =
    { $description }

    批次：{ $batch }（状态：{ $status }）
    检测项目：{ $test }
    结果：{ $value }
    限度：{ $limit }
    偏差：{ $deviation }（{ $severity }）

    在质量保证部门关闭调查之前，该结果不能被替代或复检；只有有据可查的可归属原因（invalid_test）才能使其无效。
email-late-oos-body = { email-oos-body }

email-excursion-subject = 批次 { $batch } 发生温度偏离
email-excursion-body =
    { $description }

    偏差：{ $deviation }

    偏差未关闭前，此批次不能放行。

email-correction-failed-subject = 批次 { $batch } 经更正后不符合质量标准
email-correction-failed-body =
    批次 { $batch }（{ $status }）的放行后更正“{ $title }”已由 { $name } 关闭：此批次不符合质量标准。

    根本原因：{ $root_cause }

    此批次不能再次放行；请立即决定是否召回以及需要通知谁。

email-ready-subject = 批次 { $batch } 已可放行
email-ready-body = 批次 { $batch } 的所有结果均已出具、符合质量标准并经审核，且没有其他阻止放行的情况。未参与其检测的质量受权人现在可以签署放行。

email-status-subject = 批次 { $batch } { $status }
email-status-body = 批次 { $batch } 已由 { $name }（{ $username }）于 { $at } 变更为{ $status }。
email-reason = 原因：{ $reason }

email-locked-subject = 账户已锁定：{ $username }
email-locked-body =
    cellqc 账户 `{ $username }`（{ $name }）在连续 { $failures } 次密码错误后于 { $at } 被锁定。该账户将于 { $until } 自动解锁，管理员也可在“用户”页面解锁（用户编号 { $id }）。

    如果这些尝试并非该用户本人所为，请按未经授权的使用企图处理（21 CFR 11.300(d)）。

email-held-off-subject = 登录猜测：{ $username }，来自 { $address }
email-held-off-body =
    用户名 `{ $username }` 从 { $address } 连续 { $failures } 次登录失败；该地址于 { $at } 起被暂停对此用户名的登录，直至 { $until }，此后每失败一次暂停时间加倍。该账户并未被锁定：账户持有人仍可从其他地方正常登录。（该用户名可能不属于任何人：未知用户名也按同样方式处理。）

    如果这些尝试并非有权使用该账户的人所为，请按未经授权的使用企图处理（21 CFR 11.300(d)）。

email-reset-subject = 您的密码已被重置：{ $username }
email-reset-body =
    管理员 { $admin }（{ $admin_username }）于 { $at } 为您的 cellqc 账户 `{ $username }` 设置了新密码。您打开的所有会话均已结束。

    新密码为临时密码：您可以用它登录和查阅，但在设置您自己的密码（账户 > 密码）之前不能签署任何内容。管理员会当面告知您临时密码；临时密码绝不会通过电子邮件发送。

    如果您没有申请重置，请立即告知质量保证部门。

email-anchor-subject = 审计追踪锚点 { $at }：根 { $short }
email-anchor-body =
    cellqc 已于 { $at } 为其审计追踪建立锚点。

    Merkle 根：{ $root }

    { $how }
email-anchor-keep = 请原样保存此邮件（存放在数据库运维人员无法修改的邮件归档中）：将下方 JSON 保存到目录 DIR 后运行 `cellqc audit verify --anchors DIR`，即可证明此后没有任何审计链被改写或截断。签名使用本站公钥核验（GET /api/v1/audit/anchor-key）。
email-anchor-too-large = 此锚点涵盖的审计链过多，无法整体通过邮件发送：下方 JSON 为其摘要，不含根和签名所涵盖的各链链头。完整锚点是服务器锚点目录（CELLQC_ANCHOR_DIR）中的文件 { $file }：请将其复制到数据库运维人员无法写入的位置。请原样保存此邮件：该文件的根必须与上方的根一致，将文件放入目录 DIR 后运行 `cellqc audit verify --anchors DIR`，即可证明此后没有任何审计链被改写或截断。

email-impact-subject = 紧急：{ $status }批次 { $batch } 受到影响：{ $title }
email-impact-body =
    { $description }

    批次：{ $batch }（状态：{ $status }）
    偏差：{ $deviation }（严重）

    此批次已离开质量控制。请立即评估是否必须召回。
