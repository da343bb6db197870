{#-
    tenure_band(months): a length of time in months as the band analysts see instead of the exact value
    (an exact account age is the registration date in disguise).

        under_6_months, 6_to_12_months, 1_to_2_years, 2_to_5_years, 5_years_or_more

    Null stays null.
-#}
{% macro tenure_band(months) -%}
    case
        when {{ months }} < 6 then 'under_6_months'
        when {{ months }} < 12 then '6_to_12_months'
        when {{ months }} < 24 then '1_to_2_years'
        when {{ months }} < 60 then '2_to_5_years'
        when {{ months }} >= 60 then '5_years_or_more'
    end
{%- endmacro %}

{#- Whole months from a date to the night (a date), as the band macros take them. -#}
{% macro months_to_night(date_expr) -%}
    floor({{ dbt.datediff(date_expr, night(), 'day') }} / 30.4375)
{%- endmacro %}
