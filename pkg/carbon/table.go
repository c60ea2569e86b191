package carbon

// Annual average carbon intensity of electricity generation, gCO2e/kWh, by
// country (ISO 3166-1 alpha-3).
//
// Source: Our World in Data, "Energy dataset" (carbon_intensity_elec, which
// OWID derives from Ember's Yearly Electricity Data and the Energy
// Institute's Statistical Review of World Energy), as packaged by CodeCarbon
// in codecarbon/data/private_infra/global_energy_mix.json (repository
// mlco2/codecarbon, commit 0963f17527d0a89262eb849946ca7af4d0f9434c). Every
// value below is that file's "carbon_intensity" for year 2021, copied to
// three decimals; nothing was interpolated or updated. Grids have
// decarbonised since 2021 (e.g. OWID's later figures for 2023: France ~56,
// USA ~370, Germany ~381), so prefer an explicit intensity_g_per_kwh from
// your provider or Electricity Maps for publication, and cite it.
//
// These are generation (production) averages for a whole country: they do
// not account for imports, time of day or a data centre's own contracts.
const (
	TableSource = "Our World in Data energy dataset (Ember, Energy Institute), via CodeCarbon global_energy_mix.json"
	TableYear   = 2021
)

type entry struct {
	iso3, iso2, name string
	g                float64
}

var table = []entry{
	{"ARE", "AE", "United Arab Emirates", 461.845},
	{"ARG", "AR", "Argentina", 357.786},
	{"AUS", "AU", "Australia", 531.247},
	{"AUT", "AT", "Austria", 147.573},
	{"BEL", "BE", "Belgium", 156.922},
	{"BGR", "BG", "Bulgaria", 354.334},
	{"BRA", "BR", "Brazil", 158.592},
	{"CAN", "CA", "Canada", 128.461},
	{"CHE", "CH", "Switzerland", 47.101},
	{"CHL", "CL", "Chile", 416.881},
	{"CHN", "CN", "China", 544.355},
	{"COL", "CO", "Colombia", 181.065},
	{"CZE", "CZ", "Czechia", 405.589},
	{"DEU", "DE", "Germany", 365.477},
	{"DNK", "DK", "Denmark", 221.416},
	{"EGY", "EG", "Egypt", 464.425},
	{"ESP", "ES", "Spain", 193.863},
	{"EST", "EE", "Estonia", 481.224},
	{"FIN", "FI", "Finland", 145.541},
	{"FRA", "FR", "France", 67.39},
	{"GBR", "GB", "United Kingdom", 268.329},
	{"GRC", "GR", "Greece", 353.339},
	{"HKG", "HK", "Hong Kong", 683.972},
	{"HRV", "HR", "Croatia", 210.979},
	{"HUN", "HU", "Hungary", 233.037},
	{"IDN", "ID", "Indonesia", 623.157},
	{"IND", "IN", "India", 637.182},
	{"IRL", "IE", "Ireland", 363.608},
	{"ISL", "IS", "Iceland", 28.557},
	{"ISR", "IL", "Israel", 548.03},
	{"ITA", "IT", "Italy", 340.794},
	{"JPN", "JP", "Japan", 478.545},
	{"KEN", "KE", "Kenya", 86.221},
	{"KOR", "KR", "South Korea", 458.081},
	{"LTU", "LT", "Lithuania", 244.604},
	{"LUX", "LU", "Luxembourg", 186.992},
	{"LVA", "LV", "Latvia", 223.932},
	{"MEX", "MX", "Mexico", 399.852},
	{"MYS", "MY", "Malaysia", 548.611},
	{"NLD", "NL", "Netherlands", 388.702},
	{"NOR", "NO", "Norway", 27.55},
	{"NZL", "NZ", "New Zealand", 132.427},
	{"PAK", "PK", "Pakistan", 366.052},
	{"PHL", "PH", "Philippines", 580.908},
	{"POL", "PL", "Poland", 660.122},
	{"PRT", "PT", "Portugal", 219.053},
	{"ROU", "RO", "Romania", 255.877},
	{"RUS", "RU", "Russia", 359.937},
	{"SAU", "SA", "Saudi Arabia", 571.336},
	{"SGP", "SG", "Singapore", 487.937},
	{"SVK", "SK", "Slovakia", 169.589},
	{"SVN", "SI", "Slovenia", 238.614},
	{"SWE", "SE", "Sweden", 45.817},
	{"THA", "TH", "Thailand", 506.635},
	{"TUR", "TR", "Turkey", 430.401},
	{"TWN", "TW", "Taiwan", 573.275},
	{"UKR", "UA", "Ukraine", 240.175},
	{"USA", "US", "United States", 379.26},
	{"VNM", "VN", "Vietnam", 448.217},
	{"ZAF", "ZA", "South Africa", 715.681},
}
