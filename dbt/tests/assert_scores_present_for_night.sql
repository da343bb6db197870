-- The night being built has scores: an empty night means the scoring job did
-- not write lake/scores/ds=<night>, and nothing should be published from it.
select {{ night() }} as ds
where not exists (
    select 1
    from {{ ref('sesame_scores') }}
    where ds = {{ night() }}
)
